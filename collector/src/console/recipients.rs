//! The recipients page: per tenant, the recipients of its jobs with their opt-in state and
//! consent log as the delivery store keeps them; invite and remove (tenant managers and
//! administrators).
//!
//! Invite is the scheduler's [`invite_now`](crate::schedule::runner::Scheduler::invite_now),
//! remove is [`crate::recipients::remove`]: the very functions `ampel-collector recipients
//! invite|remove` call. Only addresses of a job the viewer manages can be invited or removed;
//! consent log entries naming a job the viewer does not see say "another job".

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::jobs::{VisibleJob, visible_job, visible_jobs};
use super::pages::{self, blocking, when};
use super::words::Words;
use super::{BASE, Refusal, Viewer};
use crate::http::HttpState;
use crate::schedule::{ConsentEvent, DeliveryStore, RecipientState};

type Page = Result<Response, Refusal>;

/// One consent log entry of a recipient.
#[derive(Serialize)]
pub(super) struct ConsentRow {
    at_ms: i64,
    event: String,
    source: String,
    detail: String,
}

/// A `to` or `cc` address of a job with its opt-in state.
#[derive(Serialize)]
pub(super) struct RecipientRow {
    address: String,
    field: &'static str,
    /// `None`: never invited.
    state: Option<RecipientState>,
    removed_from_job: bool,
    /// Invited, reminded, confirmed, unsubscribed, removed…, oldest first.
    consent: Vec<ConsentRow>,
}

/// A job's visible tenants and its recipients.
#[derive(Serialize)]
pub(super) struct JobRecipients {
    job: String,
    tenants: Vec<String>,
    recipients: Vec<RecipientRow>,
}

/// The job's `to` and `cc` addresses, each once, state not yet read.
fn addresses(v: &VisibleJob<'_>) -> JobRecipients {
    let mut seen = BTreeSet::new();
    let to = v.job.to.0.iter().map(|m| ("to", crate::recipients::bare(m)));
    let cc = v.job.cc.0.iter().map(|m| ("cc", crate::recipients::bare(m)));
    let recipients = to
        .chain(cc)
        .filter(|(_, a)| seen.insert(a.clone()))
        .map(|(field, address)| RecipientRow { address, field, state: None, removed_from_job: false, consent: Vec::new() })
        .collect();
    JobRecipients { job: v.job.name.0.clone(), tenants: v.tenants.clone(), recipients }
}

/// A consent entry as the viewer may see it: a job they do not manage is not named.
fn consent_row(e: &ConsentEvent, shown: &BTreeSet<String>) -> ConsentRow {
    let detail = match e.detail.strip_prefix("job ") {
        Some(job) if !shown.contains(job) => "another job".to_owned(),
        _ => e.detail.clone(),
    };
    ConsentRow { at_ms: e.at_ms, event: e.event.clone(), source: e.source.clone(), detail }
}

/// Fills in state and consent log of every recipient from the delivery store.
fn read_states(jobs: &mut [JobRecipients], delivery: &DeliveryStore) -> Result<(), super::ConsoleError> {
    let shown: BTreeSet<String> = jobs.iter().map(|j| j.job.clone()).collect();
    let log = delivery.consent_log()?;
    for job in jobs.iter_mut() {
        for r in &mut job.recipients {
            let stored = delivery.recipient(&r.address)?;
            r.removed_from_job = stored.as_ref().is_some_and(|s| s.removed_jobs.contains(&job.job));
            r.state = stored.map(|s| s.state);
            r.consent = log.iter().filter(|e| e.address == r.address).map(|e| consent_row(e, &shown)).collect();
        }
    }
    Ok(())
}

/// For every job of a visible tenant, its recipients with their opt-in state and consent log
/// (the page and `GET /api/v1/recipients`). A job's other tenants are not named.
pub(super) async fn listing(viewer: &Viewer, delivery: &DeliveryStore) -> Result<Vec<JobRecipients>, Refusal> {
    let mut jobs: Vec<JobRecipients> = visible_jobs(viewer)?.iter().map(addresses).collect();
    let delivery = delivery.clone();
    Ok(blocking(move || {
        read_states(&mut jobs, &delivery)?;
        Ok(jobs)
    })
    .await?)
}

/// What the consent log calls the console user's actions: user and client address.
fn source(viewer: &Viewer) -> String {
    format!("console ({}, {})", viewer.user.name, viewer.client)
}

/// Invites `address` (one of the `to`/`cc` of `job`, a job the viewer manages) again through
/// the scheduler's invitation path: a mail with a fresh confirm link, unless it confirmed
/// already; to its end even if the client goes away. Audited before it is attempted. Returns
/// the state it had.
pub(super) async fn invite_to(viewer: &Viewer, job: &str, address: &str) -> Result<Option<RecipientState>, Refusal> {
    visible_job(viewer, job)?;
    if viewer.console.resender().is_none() {
        return Err(Refusal::NoResender);
    }
    viewer.console.record(viewer.user.name.as_str(), "invite", &format!("{address} for job {job}"), viewer.client)?;
    tracing::info!(job, user = %viewer.user.name, client = %viewer.client, "console invitation");
    let (console, job, address, source) = (viewer.console.clone(), job.to_owned(), address.to_owned(), source(viewer));
    super::to_completion(async move {
        let scheduler = console.resender().ok_or(Refusal::NoResender)?;
        Ok(scheduler.invite_now(&job, &address, &source, jiff::Timestamp::now()).await?)
    })
    .await?
}

/// Why a remove was declined.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// The address is the job's, but it was never invited: there is nothing to remove yet.
    #[error("{0} has not been invited yet: there is nothing to remove; take it out of the job's to/cc in the configuration")]
    NotInvited(String),
}

/// Stops `address` getting job `job`'s reports ([`crate::recipients::remove`], as `recipients
/// remove` does); its other jobs go on. Only an address of the job, of a job the viewer
/// manages (else [`Refusal::NotFound`]). Audited.
pub(super) async fn remove_from(viewer: &Viewer, delivery: &DeliveryStore, job: &str, address: &str) -> Result<(), Refusal> {
    let v = visible_job(viewer, job)?;
    let bare = crate::recipients::bare(address);
    if !v.job.to.0.iter().chain(&v.job.cc.0).any(|m| crate::recipients::bare(m) == bare) {
        return Err(Refusal::NotFound);
    }
    viewer.console.record(viewer.user.name.as_str(), "remove", &format!("{bare} from job {job}"), viewer.client)?;
    let (delivery, job_name, who, at) = (delivery.clone(), job.to_owned(), source(viewer), super::now_ms());
    let address = bare.clone();
    let known = blocking(move || Ok(crate::recipients::remove(&delivery, &address, &job_name, &who, at)?)).await?;
    if !known {
        return Err(Refusal::Declined { status: axum::http::StatusCode::CONFLICT, reason: Box::new(RemoveError::NotInvited(bare)) });
    }
    tracing::info!(job, user = %viewer.user.name, client = %viewer.client, "console removed a recipient from a job");
    Ok(())
}

fn state_text(w: &Words, r: &RecipientRow) -> &'static str {
    match (r.removed_from_job, r.state) {
        (true, _) => w.removed_from_job,
        (false, Some(s)) => w.recipient_state(s),
        (false, None) => w.not_invited,
    }
}

/// The hidden fields and button of a per-row action.
fn row_action(viewer: &Viewer, action: &str, job: &str, address: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ (BASE) "/recipients/" (action) } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="job" value=(job);
            input type="hidden" name="address" value=(address);
            button type="submit" aria-label=((viewer.words().action_label)(label, address, job)) { (label) }
        }
    }
}

fn job_table(viewer: &Viewer, j: &JobRecipients) -> Markup {
    let w = viewer.words();
    let [address, field, state, consent, actions] = w.recipient_columns;
    html! {
        div.scroll { table {
            caption { ((w.job_caption)(&j.job)) }
            thead { tr { th scope="col" { (address) } th scope="col" { (field) } th scope="col" { (state) } th scope="col" { (consent) } th scope="col" { (actions) } } }
            tbody { @for r in &j.recipients { tr {
                th scope="row" { (r.address) } td { (r.field) } td { (state_text(w, r)) }
                td { @if r.consent.is_empty() { (w.none) } @else { ul.log { @for e in &r.consent {
                    li { (when(viewer, Some(e.at_ms))) " " strong { (e.event) } " (" (e.source) @if !e.detail.is_empty() { ", " (e.detail) } ")" }
                } } } }
                td {
                    (row_action(viewer, "invite", &j.job, &r.address, w.invite))
                    @if r.state.is_some() && !r.removed_from_job { (row_action(viewer, "remove", &j.job, &r.address, w.remove)) }
                }
            } } }
        } }
    }
}

fn invite_form(viewer: &Viewer, jobs: &[JobRecipients]) -> Markup {
    let w = viewer.words();
    html! {
        form.stack method="post" action={ (BASE) "/recipients/invite" } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label for="invite-job" { (w.job) }
            select #invite-job name="job" required { @for j in jobs { option value=(j.job) { (j.job) } } }
            label for="invite-address" { (w.invite_address) }
            input #invite-address name="address" type="email" autocomplete="off" required;
            button type="submit" { (w.send_invitation) }
        }
    }
}

/// `GET /console/recipients` (tenant managers, administrators).
pub async fn page(viewer: Viewer, State(state): State<Arc<HttpState>>) -> Page {
    let jobs = listing(&viewer, &state.store).await?;
    let tenants: BTreeSet<&String> = jobs.iter().flat_map(|j| &j.tenants).collect();
    let w = viewer.words();
    let body = html! {
        p { (w.recipients_intro) }
        @if jobs.is_empty() { p { (w.no_jobs) } } @else {
            h2 { (w.invite) }
            (invite_form(&viewer, &jobs))
            @for t in tenants {
                h2 { (w.tenant) " " (t) }
                @for j in jobs.iter().filter(|j| j.tenants.contains(t)) { (job_table(&viewer, j)) }
            }
        }
    };
    Ok(pages::page(&viewer, w.recipients, body))
}

/// The invite and remove forms.
#[derive(Deserialize)]
pub struct RecipientForm {
    /// The session's token.
    #[serde(default)]
    csrf: String,
    /// The job.
    #[serde(default)]
    job: String,
    /// The address.
    #[serde(default)]
    address: String,
}

fn done_page(viewer: &Viewer, title: &str, message: &str) -> Response {
    let body = html! { p role="status" { (message) } p { a href={ (BASE) "/recipients" } { (viewer.words().back_to_recipients) } } };
    pages::page(viewer, title, body)
}

/// One sentence on an invitation, in the words of `w`.
pub(super) fn invited_message(w: &Words, address: &str, job: &str, before: Option<RecipientState>) -> String {
    match before {
        Some(RecipientState::Confirmed) => (w.invited_confirmed)(address, job),
        Some(s) => (w.invited_again)(job, address, w.recipient_state(s)),
        None => (w.invited)(job, address),
    }
}

/// `POST /console/recipients/invite` (form `csrf`, `job`, `address`).
pub async fn invite(viewer: Viewer, Form(f): Form<RecipientForm>) -> Page {
    viewer.check_csrf(&f.csrf)?;
    let before = invite_to(&viewer, &f.job, &f.address).await?;
    let w = viewer.words();
    Ok(done_page(&viewer, w.invitation, &invited_message(w, &f.address, &f.job, before)))
}

/// `POST /console/recipients/remove` (form `csrf`, `job`, `address`).
pub async fn remove(viewer: Viewer, State(state): State<Arc<HttpState>>, Form(f): Form<RecipientForm>) -> Page {
    viewer.check_csrf(&f.csrf)?;
    remove_from(&viewer, &state.store, &f.job, &f.address).await?;
    let w = viewer.words();
    Ok(done_page(&viewer, w.removed, &(w.removed_text)(&f.address, &f.job)))
}
