//! Login and logout.
//!
//! The login form is protected against login CSRF by a double-submit token: the form page
//! sets a short-lived `ampel_login` cookie (SameSite=Strict, so a cross-site POST never
//! carries it) and puts the same value in a hidden field. Failed logins count against the
//! client's address and the user name tried ([`super::session::LoginLimiter`]); both are
//! logged (the name with `?`, so control characters are escaped), the password never.

use std::sync::Arc;

use ampel_protocol::logsafe::esc;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::{self, MAX_FAILURES, WINDOW_MS};
use super::words::{self, Words};
use super::{BASE, Console, ConsoleError, Refusal, SESSION_COOKIE, Viewer, client_of, cookie, credential, now_ms, pages};
use crate::http::HttpState;

/// The login form's CSRF cookie.
pub const LOGIN_COOKIE: &str = "ampel_login";
/// How long a login form stays usable.
const LOGIN_FORM_SECS: i64 = 600;

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/console`, Secure when the console
/// is reached over https. `max_age` 0 deletes the cookie; `None` makes a session cookie.
pub fn set_cookie(console: &Console, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if console.secure { "; Secure" } else { "" };
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let text = format!("{name}={value}; Path={BASE}; HttpOnly; SameSite=Strict{secure}{age}");
    // Names and values are our own hex tokens and constants: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// `GET /console/login`: the form, with a fresh login CSRF cookie.
pub async fn form(State(state): State<Arc<HttpState>>, headers: axum::http::HeaderMap) -> Response {
    let Some(console) = state.console.clone() else { return Refusal::NotFound.into_response() };
    login_page(&console, Words::get(words::page_lang(None, &headers)), StatusCode::OK, None)
}

fn login_page(console: &Console, w: &Words, status: StatusCode, message: Option<&str>) -> Response {
    let token = session::random_token();
    let mut resp = (status, pages::login_page(w, &token, message)).into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(console, LOGIN_COOKIE, &token, Some(LOGIN_FORM_SECS)));
    resp
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    csrf: String,
}

/// The client's address, as an extractor for the login handler.
pub struct Client(std::net::IpAddr);

impl<S: Sync> FromRequestParts<S> for Client {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        client_of(parts).map(Client).map_err(IntoResponse::into_response)
    }
}

/// `POST /console/login`: checks the limiter, the form token and the password; starts a
/// session and goes to the fleet page.
pub async fn submit(
    State(state): State<Arc<HttpState>>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let Some(console) = state.console.clone() else { return Refusal::NotFound.into_response() };
    let w = Words::get(words::page_lang(None, &headers));
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| session::same(c, &f.csrf)) {
        tracing::warn!(client = %client, "console login refused: login form token missing or wrong");
        return login_page(&console, w, StatusCode::FORBIDDEN, Some(w.login_expired));
    }
    let keys = limiter_keys(client, &f.user);
    let now = now_ms();
    if console.limiter.blocked(&keys, now) {
        tracing::warn!(client = %client, user = %esc(&f.user), "console login refused: too many failures");
        let msg = (w.login_blocked)(MAX_FAILURES, WINDOW_MS / 60_000);
        return login_page(&console, w, StatusCode::TOO_MANY_REQUESTS, Some(&msg));
    }
    let (console2, user, password) = (console.clone(), f.user.clone(), f.password);
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let found = tokio::task::spawn_blocking(move || {
        let users = console2.users();
        match users.iter().find(|u| u.name.as_str() == user) {
            Some(u) => u.password_hash.verify(&password).then(|| u.clone()),
            None => {
                console2.dummy.verify(&password);
                None
            }
        }
    })
    .await;
    match found {
        Ok(Some(u)) => logged_in(&console, &u, client, &format!("user:{}", u.name)),
        Ok(None) => {
            console.limiter.failed(&keys, now);
            tracing::warn!(client = %client, user = %esc(&f.user), "console login failed: unknown user or wrong password");
            login_page(&console, w, StatusCode::UNAUTHORIZED, Some(w.login_failed))
        }
        Err(e) => ConsoleError::from(e).into_response(),
    }
}

/// What a failed login counts against: the client's address, and the name tried when it is a
/// possible user name (anything else cannot be a user, and must not grow the limiter's keys
/// with whatever a client sends).
fn limiter_keys(client: std::net::IpAddr, name: &str) -> Vec<String> {
    let mut keys = vec![format!("addr:{client}")];
    if let Ok(name) = super::users::UserName::parse(name) {
        keys.push(format!("user:{name}"));
    }
    keys
}

fn logged_in(console: &Console, u: &super::users::UserConfig, client: std::net::IpAddr, user_key: &str) -> Response {
    console.limiter.succeeded(user_key);
    if let Err(e) = console.record(u.name.as_str(), "login", "", client) {
        // Nothing happened yet that needs recording; refuse rather than act unrecorded.
        return e.into_response();
    }
    let token = console.sessions.create(u.name.as_str(), &credential(u), now_ms());
    tracing::info!(user = %u.name, role = u.role.as_str(), client = %client, "console login");
    let mut resp = Redirect::to(&format!("{BASE}/")).into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(console, SESSION_COOKIE, &token, None));
    h.append(header::SET_COOKIE, set_cookie(console, LOGIN_COOKIE, "", Some(0)));
    resp
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The session's token (missing: empty, refused like a wrong one).
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/logout`: ends the session.
pub async fn logout(viewer: Viewer, Form(f): Form<CsrfForm>) -> Response {
    if let Err(r) = viewer.check_csrf(&f.csrf) {
        return r.into_response();
    }
    viewer.console.sessions.remove(&viewer.token);
    // The session is gone either way; a failure to record it must not keep the user in.
    if let Err(e) = viewer.console.record(viewer.user.name.as_str(), "logout", "", viewer.client) {
        tracing::error!(error = %e, user = %viewer.user.name, "logout not recorded in the audit log");
    }
    let mut resp = Redirect::to(&format!("{BASE}/login")).into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(&viewer.console, SESSION_COOKIE, "", Some(0)));
    resp
}
