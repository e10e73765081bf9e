//! The enrollment page (administrators): make a one-time enrollment token for a device of a
//! tenant, and revoke a device.
//!
//! A token is made by [`crate::enroll::tokens::issue`] and a device revoked by
//! [`Pki::revoke_device`] — what `ampel-collector pki token` and `pki revoke --device` call.
//! The token is shown once, on the answer to the form, and is neither logged nor audited (the
//! audit log says which device of which tenant got one, and the token's id). A revocation
//! re-signs `crl.pem`; the running collector's CRL watcher reloads it and refuses the device's
//! next handshake.

use std::collections::BTreeMap;

use ampel_protocol::{DeviceId, TenantId};
use axum::Form;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{self, blocking, when};
use super::{BASE, ConsoleError, Refusal, Viewer};
use crate::enroll::tokens::{IssueError, Issued};
use crate::pki::Pki;

type Page = Result<Response, Refusal>;

/// A request the user can correct: 400 with why.
fn bad_request(e: impl std::error::Error + Send + Sync + 'static) -> Refusal {
    Refusal::Declined { status: StatusCode::BAD_REQUEST, reason: Box::new(e) }
}

/// The CA, or a refusal saying it cannot be opened (`pki init` not run).
fn open_pki(viewer: &Viewer) -> Result<Pki, Refusal> {
    Pki::open(&viewer.console.cfg.pki_dir()).map_err(|e| Refusal::Declined { status: StatusCode::CONFLICT, reason: Box::new(e) })
}

/// A device as the page lists it.
struct DeviceRow {
    device: String,
    tenant: String,
    last_seen_ms: Option<i64>,
    /// Certificates of it on the CRL.
    revoked: usize,
}

/// The devices of the tenants the viewer sees, with their revoked certificates, by tenant.
async fn devices(viewer: &Viewer) -> Result<Vec<DeviceRow>, Refusal> {
    let pki = open_pki(viewer)?;
    let console = viewer.console.clone();
    let user = viewer.user.clone();
    Ok(blocking(move || {
        let mut revoked: BTreeMap<String, usize> = BTreeMap::new();
        for r in pki.revoked()? {
            *revoked.entry(r.device).or_default() += 1;
        }
        let mut list = console.store.devices(None)?;
        list.sort_by(|(a, x), (b, y)| (&x.tenant, a).cmp(&(&y.tenant, b)));
        Ok(list
            .into_iter()
            .filter(|(_, d)| user.sees(&d.tenant))
            .map(|(device, d)| DeviceRow {
                revoked: revoked.get(&device).copied().unwrap_or(0),
                device,
                tenant: d.tenant,
                last_seen_ms: d.last_seen_ms,
            })
            .collect())
    })
    .await?)
}

/// `secs` as the config would write it: `30m`, `24h`, `7d`.
fn ttl_text(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The token form; the tenants with devices are offered, a new one can be typed.
fn token_form(viewer: &Viewer, tenants: &[&str]) -> Markup {
    let w = viewer.words();
    html! {
        form.stack method="post" action={ (BASE) "/enrollment/token" } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label for="token-tenant" { (w.tenant) }
            input #token-tenant name="tenant" type="text" list="known-tenants" autocomplete="off" required;
            datalist #known-tenants { @for t in tenants { option value=(t) {} } }
            label for="token-device" { (w.device_id) }
            input #token-device name="device" type="text" autocomplete="off" required;
            button type="submit" { (w.make_token) }
        }
    }
}

fn devices_table(viewer: &Viewer, rows: &[DeviceRow]) -> Markup {
    let w = viewer.words();
    html! {
        div.scroll { table {
            thead { tr { th scope="col" { (w.device) } th scope="col" { (w.tenant) } th scope="col" { (w.last_seen) } th scope="col" { (w.revoked_certificates) } th scope="col" { (w.revoke) } } }
            tbody { @for d in rows { tr {
                th scope="row" { (d.device) } td { (d.tenant) } td { (when(viewer, d.last_seen_ms)) }
                td.num { @if d.revoked > 0 { (d.revoked) " " (w.revoked_mark) } @else { "0" } }
                td { form method="post" action={ (BASE) "/enrollment/revoke" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="device" value=(d.device);
                    button type="submit" aria-label=((w.revoke_label)(&d.device)) { (w.revoke) }
                } }
            } } }
        } }
    }
}

/// `GET /console/enrollment` (administrators).
pub async fn page(viewer: Viewer) -> Page {
    viewer.administrator()?;
    let rows = devices(&viewer).await?;
    let mut tenants: Vec<&str> = rows.iter().map(|d| d.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let ttl = ttl_text(viewer.console.cfg.pki.token_ttl.as_secs());
    let w = viewer.words();
    let body = html! {
        h2 { (w.enroll_device) }
        p { ((w.token_intro)(&ttl)) }
        (token_form(&viewer, &tenants))
        h2 { (w.devices) }
        p { (w.revoke_intro) }
        @if rows.is_empty() { p { (w.no_devices) } } @else { (devices_table(&viewer, &rows)) }
    };
    Ok(pages::page(&viewer, w.enrollment, body))
}

/// The token form.
#[derive(Deserialize)]
pub struct TokenForm {
    /// The session's token.
    #[serde(default)]
    csrf: String,
    /// The tenant.
    #[serde(default)]
    tenant: String,
    /// The device id.
    #[serde(default)]
    device: String,
}

/// A one-time token for `device` of `tenant` (administrators of that tenant), audited
/// without its secret.
pub(super) async fn make_token(viewer: &Viewer, tenant: &str, device: &str) -> Result<Issued, Refusal> {
    viewer.administrator()?;
    let tenant = TenantId::new(tenant.trim()).map_err(bad_request)?;
    if !viewer.sees(tenant.as_str()) {
        return Err(Refusal::NotFound);
    }
    let device = DeviceId::new(device.trim()).map_err(bad_request)?;
    let pki = open_pki(viewer)?;
    let (console, ttl, now) = (viewer.console.clone(), viewer.console.cfg.pki.token_ttl, super::now_ms() / 1000);
    let (t, d) = (tenant.clone(), device.clone());
    let issued = blocking(move || Ok(crate::enroll::tokens::issue(&pki, &console.store, (&t, &d), ttl, now))).await?;
    let issued = match issued {
        Ok(i) => i,
        // The other tenant is not named: it may be one the administrator does not see.
        Err(IssueError::DeviceTaken { device, .. }) => return Err(bad_request(DeviceTaken(device))),
        Err(e) => return Err(ConsoleError::from(e).into()),
    };
    let target = format!("device {device} of tenant {tenant} (token {})", issued.token.id);
    viewer.console.record(viewer.user.name.as_str(), "enroll-token", &target, viewer.client)?;
    tracing::info!(%tenant, %device, token = %issued.token.id, user = %viewer.user.name, "console made an enrollment token");
    Ok(issued)
}

/// A device id in use under another tenant.
#[derive(Debug, thiserror::Error)]
#[error("device id {0} is taken by another device; device ids are unique across all tenants")]
pub struct DeviceTaken(DeviceId);

/// `POST /console/enrollment/token` (form `csrf`, `tenant`, `device`): the token, once.
pub async fn token(viewer: Viewer, Form(f): Form<TokenForm>) -> Page {
    viewer.check_csrf(&f.csrf)?;
    let issued = make_token(&viewer, &f.tenant, &f.device).await?;
    let token = issued.token.to_text();
    let w = viewer.words();
    let until = when(&viewer, Some(issued.expires_at.saturating_mul(1000)));
    let body = html! {
        p role="status" { ((w.token_for)(issued.token.device.as_ref(), issued.token.tenant.as_ref(), &until)) }
        p { (w.token_once) " " code { "ampel-agent enroll" } "." }
        pre.token aria-label=(w.token_label) { code { (token) } }
        p { a href={ (BASE) "/enrollment" } { (w.back_to_enrollment) } }
    };
    Ok(pages::page(&viewer, w.token_title, body))
}

/// The revoke form.
#[derive(Deserialize)]
pub struct RevokeForm {
    /// The session's token.
    #[serde(default)]
    csrf: String,
    /// The device id.
    #[serde(default)]
    device: String,
}

/// Revokes every certificate of `device` (a registered device of a tenant the administrator
/// sees, else [`Refusal::NotFound`]), audited. Returns its tenant and the serials newly revoked.
pub(super) async fn revoke_device(viewer: &Viewer, device: &str) -> Result<(String, Vec<String>), Refusal> {
    viewer.administrator()?;
    let Ok(device) = DeviceId::new(device) else { return Err(Refusal::NotFound) };
    let console = viewer.console.clone();
    let id = device.to_string();
    let record = blocking(move || Ok(console.store.device(&id)?)).await?;
    let Some(tenant) = record.map(|r| r.tenant).filter(|t| viewer.sees(t)) else { return Err(Refusal::NotFound) };
    let pki = open_pki(viewer)?;
    viewer.console.record(viewer.user.name.as_str(), "revoke", &format!("device {device} of tenant {tenant}"), viewer.client)?;
    let serials = blocking(move || Ok(pki.revoke_device(&device)?)).await?;
    tracing::info!(%tenant, serials = ?serials, user = %viewer.user.name, "console revoked a device");
    Ok((tenant, serials))
}

/// `POST /console/enrollment/revoke` (form `csrf`, `device`).
pub async fn revoke(viewer: Viewer, Form(f): Form<RevokeForm>) -> Page {
    viewer.check_csrf(&f.csrf)?;
    let (tenant, serials) = revoke_device(&viewer, &f.device).await?;
    let w = viewer.words();
    let body = html! {
        p role="status" {
            @if serials.is_empty() { ((w.nothing_revoked)(&f.device, &tenant)) }
            @else { ((w.revoked_text)(&f.device, &tenant, serials.len(), &serials.join(", "))) }
        }
        p { a href={ (BASE) "/enrollment" } { (w.back_to_enrollment) } }
    };
    Ok(pages::page(&viewer, w.device_revoked, body))
}
