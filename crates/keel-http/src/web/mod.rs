//! The web interface, served by `keel serve` itself: server-rendered HTML
//! (maud escapes every interpolated value) with a little JavaScript for
//! live timelines, countdowns and suggestions; everything works without it.
//! Sign-in uses database sessions (any node serves any browser), every form
//! that changes something carries the session's CSRF token, and every page
//! goes through the same handlers, checks and domain as the JSON API.
//!
//! - [`session`]: cookies, sign-in with lock-out, the viewer and form extractors.
//! - [`console`]: the agents' queue, saved views, boards, quick registration.
//! - [`incident`]: the incident page, its actions and the live timeline stream.
//! - [`portal`]: end users report, follow and confirm.
//! - [`status`]: the public status page.
//! - [`dashboard`]: backlog now, metric trends as SVG charts, drill-down.
//! - [`capability`]: the capability self-assessment (evidence, verdicts, level).
//! - [`admin`]: users, catalogue, integrations, rules, SLAs, schedules; the account page.

mod admin;
mod capability;
mod console;
mod dashboard;
mod incident;
mod portal;
mod session;
mod status;
mod view;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

use crate::AppState;
use crate::error::ApiError;
pub(crate) use session::{Posted, Viewer};

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// A short fingerprint of the assets, so browsers may cache them for good.
fn asset_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{CSS}{JS}").as_bytes());
        hex::encode(&digest[..6])
    })
}

/// Every web route. The API's own routes and fallback stay as they are.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(console::queue))
        .route("/views", post(console::save_view))
        .route("/views/delete", post(console::delete_view))
        .route("/boards", get(console::boards))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/incidents", get(dashboard::incidents))
        .route("/capability", get(capability::page))
        .route("/capability/{criterion}", post(capability::record))
        .route("/teams/{id}/board", get(console::board))
        .route("/incidents/new", get(console::register_form))
        .route("/incidents", post(console::register))
        .route("/incidents/{id}", get(incident::page))
        .route("/incidents/{id}/stream", get(incident::stream))
        .route("/incidents/{id}/actions/{action}", post(incident::act))
        .route("/incidents/{id}/comments", post(incident::comment))
        .route("/incidents/{id}/reclassify", post(incident::reclassify))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/account", get(admin::account))
        .route("/account/profile", post(admin::update_profile))
        .route("/account/password", post(admin::change_password))
        .route("/portal", get(portal::home))
        .route("/portal/new", get(portal::report_form).post(portal::report))
        .route("/portal/known", get(portal::known))
        .route("/portal/incidents/{id}", get(portal::incident))
        .route("/portal/incidents/{id}/confirm", post(portal::confirm))
        .route("/portal/incidents/{id}/reject", post(portal::reject))
        .route("/portal/incidents/{id}/comment", post(portal::comment))
        .route("/portal/incidents/{id}/follow", post(portal::follow))
        .route("/portal/incidents/{id}/unfollow", post(portal::unfollow))
        .route("/status", get(status::page))
        .route("/admin", get(admin::index))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::update_user))
        .route(
            "/admin/integrations",
            get(admin::integrations).post(admin::create_integration),
        )
        .route("/admin/integrations/{id}/rotate", post(admin::rotate_integration))
        .route("/admin/{kind}", get(admin::documents).post(admin::create_document))
        .route("/admin/{kind}/{id}/delete", post(admin::delete_document))
        .route(
            "/assets/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .layer(axum::middleware::from_fn(security_headers))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// Pages may run only our own script and style, never be framed, and are
/// not cached by shared caches (they show one person's data).
async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The frame of every page: skip link, header with navigation (for a
/// signed-in viewer), the main content.
pub(crate) fn layout(viewer: Option<&Viewer>, title: &str, main: Markup) -> Markup {
    let version = asset_version();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · keel" }
                link rel="stylesheet" href={ "/assets/app.css?v=" (version) };
                script src={ "/assets/app.js?v=" (version) } defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(viewer.map_or("/status", |v| if v.is_staff() { "/" } else { "/portal" })) { "keel" }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Main" {
                            ul {
                                @if viewer.is_staff() {
                                    li { a href="/" { "Queue" } }
                                    li { a href="/incidents/new" { "Register" } }
                                    li { a href="/boards" { "Boards" } }
                                    li { a href="/dashboard" { "Dashboard" } }
                                } @else {
                                    li { a href="/portal" { "My incidents" } }
                                    li { a href="/portal/new" { "Report a problem" } }
                                }
                                li { a href="/status" { "Status" } }
                                @if viewer.is_admin() {
                                    li { a href="/admin" { "Admin" } }
                                }
                                li { a href="/account" { "Account" } }
                            }
                        }
                        form.signout method="post" action="/logout" {
                            (viewer.csrf_field())
                            span.who { (viewer.auth.user.name) }
                            button type="submit" { "Sign out" }
                        }
                    } @else {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/status" { "Status" } }
                                li { a href="/login" { "Sign in" } }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (main) }
            }
        }
    }
}

/// A page with a status code.
pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// An alert box for a refused action.
pub(crate) fn alert(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            div.alert role="alert" { (message) }
        }
    }
}

/// A page for errors: the status and what to do about it.
pub(crate) fn error_page(viewer: Option<&Viewer>, error: &ApiError) -> Response {
    let heading = match error.status.as_u16() {
        404 => "Not found",
        403 => "Not allowed",
        401 => "Please sign in",
        409 => "Not possible now",
        422 | 400 => "Please check your input",
        503 => "Temporarily unavailable",
        _ => "Something went wrong",
    };
    let detail = if error.status.is_server_error() {
        "An internal error occurred; it has been logged. Please try again.".to_string()
    } else {
        error.detail.clone()
    };
    respond(
        error.status,
        layout(
            viewer,
            heading,
            html! {
                h1 { (heading) }
                div.alert role="alert" { (detail) }
                p { a href="/" { "Back to the start" } }
            },
        ),
    )
}

/// Inline JSON for scripts, safe inside an HTML attribute (maud escapes it).
pub(crate) fn json_attr(value: &serde_json::Value) -> String {
    value.to_string()
}
