//! The web interface over real HTTP, as a browser without JavaScript uses
//! it: sign-in and lock-out, sessions shared by nodes, CSRF, escaping,
//! end-user isolation, the status page, forms that keep input, the live
//! timeline stream. (The JavaScript and the look are tested in Chromium by
//! tests/browser.rs.)

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{App, Caller, Engine, Node};
use crate::on_both_engines;

on_both_engines!(
    incident_managers_record_capability_evidence_on_the_capability_page,
    signing_in_needs_the_right_password_and_five_failures_lock_the_account,
    sessions_live_in_the_database_so_every_node_serves_them_until_sign_out,
    forms_without_the_session_csrf_token_or_from_another_site_change_nothing,
    user_text_is_escaped_on_every_page,
    end_users_see_only_their_own_incidents_and_no_internal_notes,
    the_status_page_shows_service_health_and_leaks_nothing_internal,
    the_registration_form_keeps_what_was_typed_when_it_is_refused,
    the_portal_reports_follows_known_issues_and_confirms_a_resolution,
    the_incident_stream_delivers_new_timeline_entries_without_reload,
    pages_need_a_session_and_the_right_role,
    changing_the_password_needs_the_current_one_and_ends_other_sessions,
    agents_save_queue_views_and_see_team_boards,
    admins_manage_the_catalogue_integrations_and_rules_through_forms,
    agents_reclassify_and_filter_by_owner_from_the_pages,
    the_dashboard_counts_the_backlog_and_drills_down_to_the_incidents_behind_a_metric,
    the_dashboard_shows_every_metric_this_week_with_its_change_and_lists_the_incidents_counted,
);

/// A cookie-keeping client that does not follow redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Mutex<BTreeMap<String, String>>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    #[track_caller]
    fn redirected_to(&self, prefix: &str) {
        assert_eq!(
            self.status, 303,
            "expected a redirect, got {}: {}",
            self.status, self.body
        );
        let location = self.location.as_deref().unwrap_or_default();
        assert!(location.starts_with(prefix), "redirected to {location}, not {prefix}…");
    }
    fn csrf(&self) -> String {
        let marker = "name=\"_csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .map(|i| i + marker.len())
            .expect("a form with _csrf");
        self.body[start..].split('"').next().unwrap_or_default().to_string()
    }
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_string(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn on(&self, node: &Node) -> Self {
        let copy = Self::new(&node.base);
        *copy.cookies.lock().expect("cookies") = self.cookies.lock().expect("cookies").clone();
        copy
    }

    fn cookie_header(&self) -> String {
        let cookies = self.cookies.lock().expect("cookies");
        cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("server answers");
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let mut cookies = self.cookies.lock().expect("cookies");
                if value.is_empty() {
                    cookies.remove(name);
                } else {
                    cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: response.text().await.expect("body"),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(self.http.post(format!("{}{path}", self.base)).form(fields))
            .await
    }

    /// Posts a form with the CSRF token of the page at `from`.
    async fn submit(&self, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(from).await.csrf();
        let mut all = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    async fn sign_in(&self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        let token = form.csrf();
        self.post("/login", &[("email", email), ("password", password), ("_csrf", &token)])
            .await
    }
}

const PASSWORD: &str = "correct horse battery";

/// A person who can sign in; returns their id and e-mail.
async fn person(app: &App, role: &str, name: &str) -> (String, String) {
    let email = format!(
        "{}-{}@example.test",
        name.to_lowercase(),
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    let created = app
        .admin
        .post(
            "/api/v1/users",
            json!({"name": name, "email": email, "role": role, "password": PASSWORD}),
        )
        .await;
    (created.ok()["id"].as_str().expect("id").to_string(), email)
}

async fn signed_in(app: &App, role: &str, name: &str) -> (Browser, String) {
    let (id, email) = person(app, role, name).await;
    let browser = Browser::new(&app.node.base);
    browser.sign_in(&email, PASSWORD).await.redirected_to("/");
    (browser, id)
}

async fn state_of(caller: &Caller, key: &str) -> String {
    caller.get(&format!("/api/v1/incidents/{key}")).await.ok()["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn key(incident: &Value) -> String {
    incident["key"].as_str().expect("key").to_string()
}

async fn signing_in_needs_the_right_password_and_five_failures_lock_the_account(engine: Engine) {
    let app = App::start(engine).await;
    let (id, email) = person(&app, "agent", "Lee").await;
    let browser = Browser::new(&app.node.base);
    for attempt in 1..=5 {
        let page = browser.sign_in(&email, "not the password").await;
        assert_eq!(page.status, 401, "attempt {attempt}");
        assert!(page.body.contains("Wrong email or password"), "{}", page.body);
    }
    let unknown = browser.sign_in("nobody@example.test", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    assert!(
        unknown.body.contains("Wrong email or password"),
        "unknown addresses look the same"
    );
    let locked = browser.sign_in(&email, PASSWORD).await;
    assert_eq!(locked.status, 401, "the right password is refused while locked");
    assert!(locked.body.contains("locked"), "{}", locked.body);
    assert!(!browser.cookie_header().contains("keel_session"));

    // An admin unlocks it from the users page.
    let (admin, _) = signed_in(&app, "admin", "Root").await;
    let done = admin
        .submit("/admin/users", &format!("/admin/users/{id}"), &[("op", "unlock")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Unlocked"));
    browser.sign_in(&email, PASSWORD).await.redirected_to("/");
    assert_eq!(browser.get("/").await.status, 200);

    // The lock also runs out by itself.
    let (_, other) = person(&app, "agent", "Kim").await;
    let fresh = Browser::new(&app.node.base);
    for _ in 0..5 {
        fresh.sign_in(&other, "wrong").await;
    }
    assert_eq!(fresh.sign_in(&other, PASSWORD).await.status, 401);
    app.node.clock.advance(16 * 60 * 1_000_000);
    fresh.sign_in(&other, PASSWORD).await.redirected_to("/");
}

async fn sessions_live_in_the_database_so_every_node_serves_them_until_sign_out(engine: Engine) {
    let app = App::start(engine).await;
    let (browser, _) = signed_in(&app, "agent", "Ana").await;
    let second = Node::start(&app.db, keel_http::HttpConfig::default()).await;
    let elsewhere = browser.on(&second);
    let queue = elsewhere.get("/").await;
    assert_eq!(queue.status, 200, "another node knows the session");
    assert!(queue.body.contains("<h1>Queue</h1>"));
    let token = queue.csrf();
    elsewhere
        .post("/logout", &[("_csrf", &token)])
        .await
        .redirected_to("/login");
    browser.get("/").await.redirected_to("/login");
    // Sessions expire after a working day.
    let (late, _) = signed_in(&app, "agent", "Bo").await;
    app.node.clock.advance(13 * 3600 * 1_000_000);
    late.get("/").await.redirected_to("/login");
}

async fn forms_without_the_session_csrf_token_or_from_another_site_change_nothing(engine: Engine) {
    let app = App::start(engine).await;
    let incident = app.agent.incident(json!({"title": "Printer jam"})).await;
    let key = key(&incident);
    let (browser, _) = signed_in(&app, "agent", "Cy").await;
    let path = format!("/incidents/{key}/actions/accept");
    let none = browser.post(&path, &[]).await;
    assert_eq!(none.status, 403, "{}", none.body);
    let wrong = browser.post(&path, &[("_csrf", "forged")]).await;
    assert_eq!(wrong.status, 403);
    let token = browser.get(&format!("/incidents/{key}")).await.csrf();
    let cross = browser
        .send(
            browser
                .http
                .post(format!("{}{path}", browser.base))
                .header("origin", "https://evil.example")
                .form(&[("_csrf", token.as_str())]),
        )
        .await;
    assert_eq!(cross.status, 403, "a request from another site is refused");
    let fetched = browser
        .send(
            browser
                .http
                .post(format!("{}{path}", browser.base))
                .header("sec-fetch-site", "cross-site")
                .form(&[("_csrf", token.as_str())]),
        )
        .await;
    assert_eq!(fetched.status, 403);
    assert_eq!(state_of(&app.agent, &key).await, "new", "nothing changed");
    browser
        .post(&path, &[("_csrf", &token)])
        .await
        .redirected_to(&format!("/incidents/{key}"));
    assert_eq!(state_of(&app.agent, &key).await, "accepted");
    // The login form is tied to the browser too.
    let stranger = Browser::new(&app.node.base);
    let (_, email) = person(&app, "agent", "Dee").await;
    let forged = stranger
        .post(
            "/login",
            &[("email", email.as_str()), ("password", PASSWORD), ("_csrf", "x")],
        )
        .await;
    assert_eq!(forged.status, 403);
}

const NASTY: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

#[track_caller]
fn escaped(page: &Page, what: &str) {
    assert_eq!(page.status, 200, "{what}: {}", page.body);
    assert!(!page.body.contains("<script>alert(1)"), "{what} has raw user HTML");
    assert!(!page.body.contains("<img src=x"), "{what} has raw user HTML");
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{what} shows the text"
    );
}

async fn user_text_is_escaped_on_every_page(engine: Engine) {
    let app = App::start(engine).await;
    app.admin.post("/api/v1/services", json!({"name": NASTY})).await.ok();
    let (user, user_id) = signed_in(&app, "end_user", "Eve").await;
    let reported = user
        .submit(
            "/portal/new",
            "/portal/new",
            &[("what", NASTY), ("service", NASTY), ("affected", "everyone")],
        )
        .await;
    reported.redirected_to("/portal/incidents/INC-");
    let key = reported
        .location
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let agent = &app.agent;
    agent
        .post(
            &format!("/api/v1/incidents/{key}/comments"),
            json!({"body": NASTY, "visibility": "public"}),
        )
        .await
        .ok();
    agent
        .post(
            &format!("/api/v1/incidents/{key}/actions/assign"),
            json!({"team": NASTY}),
        )
        .await;
    let major = agent
        .incident(json!({"title": NASTY, "major": true, "service": NASTY}))
        .await;
    agent
        .post(
            &format!("/api/v1/incidents/{}/comments", key_of(&major)),
            json!({"body": NASTY, "visibility": "public"}),
        )
        .await
        .ok();
    app.admin.patch_user_name(&user_id, NASTY).await;
    let (staff, _) = signed_in(&app, "admin", "Ops").await;
    escaped(&staff.get("/").await, "queue");
    escaped(&staff.get(&format!("/incidents/{key}")).await, "incident page");
    escaped(&staff.get("/admin/users").await, "users page");
    escaped(&staff.get("/admin/services").await, "services page");
    escaped(&user.get(&format!("/portal/incidents/{key}")).await, "portal incident");
    escaped(&user.get("/portal").await, "portal home");
    escaped(&Browser::new(&app.node.base).get("/status").await, "status page");
    let known = user.get(&format!("/portal/known?q={}", "alert script")).await;
    escaped(&known, "known issues");
}

fn key_of(incident: &Value) -> String {
    key(incident)
}

trait PatchName {
    async fn patch_user_name(&self, id: &str, name: &str);
}

impl PatchName for Caller {
    async fn patch_user_name(&self, id: &str, name: &str) {
        self.call(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({"name": name})),
        )
        .await
        .ok();
    }
}

async fn end_users_see_only_their_own_incidents_and_no_internal_notes(engine: Engine) {
    let app = App::start(engine).await;
    let (eve, _) = signed_in(&app, "end_user", "Eve").await;
    let (olly, _) = signed_in(&app, "end_user", "Olly").await;
    let mine = eve
        .submit("/portal/new", "/portal/new", &[("what", "My laptop will not boot")])
        .await;
    mine.redirected_to("/portal/incidents/INC-");
    let path = mine.location.unwrap_or_default();
    let key = path.rsplit('/').next().unwrap_or_default().to_string();
    app.agent
        .post(
            &format!("/api/v1/incidents/{key}/comments"),
            json!({"body": "internal-only-remark", "visibility": "internal"}),
        )
        .await
        .ok();
    app.agent
        .post(
            &format!("/api/v1/incidents/{key}/comments"),
            json!({"body": "We ordered a new disk", "visibility": "public"}),
        )
        .await
        .ok();
    let page = eve.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("We ordered a new disk"));
    assert!(
        !page.body.contains("internal-only-remark"),
        "no internal notes on the portal"
    );
    assert!(!page.body.contains("Sam Agent"), "staff are not named to end users");
    assert_eq!(
        olly.get(&path).await.status,
        404,
        "someone else's incident is not found"
    );
    assert!(!olly.get("/portal").await.body.contains("laptop"));
    eve.get(&format!("/incidents/{key}"))
        .await
        .redirected_to(&format!("/portal/incidents/{key}"));
    assert_eq!(olly.get(&format!("/incidents/{key}/stream")).await.status, 404);
    let token = olly.get("/portal").await.csrf();
    let comment = olly
        .post(&format!("{path}/comment"), &[("_csrf", &token), ("body", "hi")])
        .await;
    assert_eq!(comment.status, 404, "nobody comments on another's incident");
}

async fn the_status_page_shows_service_health_and_leaks_nothing_internal(engine: Engine) {
    let app = App::start(engine).await;
    for name in ["Payroll", "Email", "Wiki"] {
        app.admin.post("/api/v1/services", json!({"name": name})).await.ok();
    }
    let outage = app
        .agent
        .incident(json!({"title": "Payroll runs fail", "service": "Payroll", "major": true, "impact": 1, "urgency": 1}))
        .await;
    app.agent
        .post(
            &format!("/api/v1/incidents/{}/comments", key(&outage)),
            json!({"body": "secret-internal-detail"}),
        )
        .await
        .ok();
    app.agent
        .post(
            &format!("/api/v1/incidents/{}/comments", key(&outage)),
            json!({"body": "We are restoring payroll runs", "visibility": "public"}),
        )
        .await
        .ok();
    app.agent
        .incident(json!({"title": "Mail delay for some", "service": "Email", "impact": 2, "urgency": 2, "description": "hidden-description"}))
        .await;
    app.agent
        .incident(json!({"title": "Wiki typo", "service": "Wiki", "impact": 4, "urgency": 4}))
        .await;
    let page = Browser::new(&app.node.base).get("/status").await;
    assert_eq!(page.status, 200);
    let row = |name: &str| {
        let start = page
            .body
            .find(&format!("<th scope=\"row\">{name}</th>"))
            .expect("a row per service");
        page.body[start..].split("</tr>").next().unwrap_or_default().to_string()
    };
    assert!(row("Payroll").contains("Outage"));
    assert!(row("Email").contains("Degraded"));
    assert!(row("Wiki").contains("Operational"), "P4/P5 do not degrade a service");
    assert!(
        page.body.contains("Payroll runs fail"),
        "the major incident's title is public"
    );
    assert!(page.body.contains("We are restoring payroll runs"));
    for secret in [
        "secret-internal-detail",
        "Mail delay for some",
        "hidden-description",
        "Sam Agent",
        "Wiki typo",
    ] {
        assert!(!page.body.contains(secret), "the status page shows {secret}");
    }
    // Resolved, it moves to the history and the service recovers.
    app.agent
        .act(
            &outage,
            "resolve",
            json!({"code": "fixed", "notes": "restarted the batch"}),
        )
        .await
        .ok();
    let later = Browser::new(&app.node.base).get("/status").await;
    let start = later.body.find("<th scope=\"row\">Payroll</th>").expect("row");
    assert!(
        later.body[start..]
            .split("</tr>")
            .next()
            .unwrap_or_default()
            .contains("Operational")
    );
    assert!(later.body.contains("Recent history"));
    assert!(later.body[later.body.find("Recent history").unwrap_or(0)..].contains("Payroll runs fail"));
}

async fn the_registration_form_keeps_what_was_typed_when_it_is_refused(engine: Engine) {
    let app = App::start(engine).await;
    app.admin.post("/api/v1/services", json!({"name": "CRM"})).await.ok();
    let (browser, me) = signed_in(&app, "agent", "Reg").await;
    let form = browser.get("/incidents/new").await;
    assert!(form.body.contains("data-testid=\"priority-preview\""));
    let refused = browser
        .submit(
            "/incidents/new",
            "/incidents",
            &[
                ("title", "   "),
                ("description", "kept-description-text"),
                ("impact", "2"),
                ("urgency", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("role=\"alert\""));
    assert!(refused.body.contains("kept-description-text"), "what was typed stays");
    assert!(
        refused.body.contains("<option value=\"2\" selected"),
        "the chosen impact stays"
    );
    let bad_level = browser
        .submit("/incidents/new", "/incidents", &[("title", "x"), ("impact", "9")])
        .await;
    assert_eq!(bad_level.status, 422);
    let done = browser
        .submit(
            "/incidents/new",
            "/incidents",
            &[
                ("title", "CRM down for sales"),
                ("impact", "2"),
                ("urgency", "1"),
                ("service", "CRM"),
                ("major", "true"),
            ],
        )
        .await;
    done.redirected_to("/incidents/INC-");
    let key = done
        .location
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let stored = app.agent.get(&format!("/api/v1/incidents/{key}")).await;
    let stored = stored.ok();
    assert_eq!(
        stored["priority"], "P2",
        "impact 2 × urgency 1 is P2 in the standard matrix"
    );
    assert_eq!(stored["service"], "CRM");
    assert_eq!(stored["major"], true);
    assert_eq!(stored["reported_by"], json!(me));
    let page = browser.get(&format!("/incidents/{key}")).await;
    assert!(page.body.contains("CRM down for sales"));
    assert!(page.body.contains("Timeline verified"));
}

async fn the_portal_reports_follows_known_issues_and_confirms_a_resolution(engine: Engine) {
    let app = App::start(engine).await;
    app.admin.post("/api/v1/services", json!({"name": "VPN"})).await.ok();
    let major = app
        .agent
        .incident(json!({"title": "VPN connections drop every few minutes", "service": "VPN", "major": true}))
        .await;
    let (eve, eve_id) = signed_in(&app, "end_user", "Eve").await;
    let known = eve.get("/portal/known?q=my%20vpn%20keeps%20dropping").await;
    assert_eq!(known.status, 200);
    assert!(known.body.contains("VPN connections drop every few minutes"));
    assert!(known.body.contains("This affects me too"));
    let none = eve.get("/portal/known?q=printer%20toner").await;
    assert!(!none.body.contains("VPN connections"));
    let followed = eve
        .submit("/portal/new", &format!("/portal/incidents/{}/follow", key(&major)), &[])
        .await;
    followed.redirected_to(&format!("/portal/incidents/{}", key(&major)));
    let home = eve.get("/portal").await;
    assert!(home.body.contains("Incidents you follow"));
    assert!(home.body.contains("VPN connections drop"));

    let sent = eve
        .submit(
            "/portal/new",
            "/portal/new",
            &[
                ("what", "Outlook asks for my password again and again\nsince the update"),
                ("service", "VPN"),
                ("since", "2026-01-05T08:30"),
                ("affected", "team"),
                ("blocked", "yes"),
            ],
        )
        .await;
    sent.redirected_to("/portal/incidents/INC-");
    let key = sent
        .location
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let stored = app.agent.get(&format!("/api/v1/incidents/{key}")).await;
    let stored = stored.ok().clone();
    assert_eq!(stored["title"], "Outlook asks for my password again and again");
    assert_eq!(stored["reported_by"], json!(eve_id));
    assert_eq!(stored["channel"], "portal");
    assert_eq!(stored["impact"], 3);
    assert_eq!(stored["urgency"], 2);
    assert_eq!(stored["observed_at"], "2026-01-05T08:30:00Z");
    let empty = eve.submit("/portal/new", "/portal/new", &[("what", " ")]).await;
    assert_eq!(empty.status, 422);

    app.agent
        .act(
            &stored,
            "resolve",
            json!({"code": "fixed", "notes": "Reset the profile"}),
        )
        .await
        .ok();
    let page = eve.get(&format!("/portal/incidents/{key}")).await;
    assert!(page.body.contains("Yes, it is fixed"));
    assert!(page.body.contains("No, it is still broken"));
    let rejected = eve
        .submit(
            &format!("/portal/incidents/{key}"),
            &format!("/portal/incidents/{key}/reject"),
            &[("reason", "Still asks")],
        )
        .await;
    rejected.redirected_to(&format!("/portal/incidents/{key}"));
    assert_eq!(state_of(&app.agent, &key).await, "accepted", "reopened");
    app.agent
        .act(&stored, "resolve", json!({"code": "fixed", "notes": "Really reset it"}))
        .await
        .ok();
    let confirmed = eve
        .submit(
            &format!("/portal/incidents/{key}"),
            &format!("/portal/incidents/{key}/confirm"),
            &[("satisfaction", "4"), ("feedback", "quick, thanks")],
        )
        .await;
    confirmed.redirected_to(&format!("/portal/incidents/{key}"));
    let closed = app.agent.get(&format!("/api/v1/incidents/{key}")).await;
    let closed = closed.ok();
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["closure"]["satisfaction"], 4);
    assert_eq!(closed["closure"]["confirmed_by_reporter"], true);
    assert_eq!(closed["reopens"], 1);
}

async fn the_incident_stream_delivers_new_timeline_entries_without_reload(engine: Engine) {
    let app = App::start(engine).await;
    let incident = app.agent.incident(json!({"title": "Disk full"})).await;
    let key = key(&incident);
    let (browser, _) = signed_in(&app, "agent", "Sia").await;
    let version = incident["version"].as_u64().unwrap_or(1);
    let mut response = browser
        .http
        .get(format!("{}/incidents/{key}/stream?after={version}", browser.base))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    app.agent
        .post(
            &format!("/api/v1/incidents/{key}/comments"),
            json!({"body": "streamed <b>note</b>"}),
        )
        .await
        .ok();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("streamed") {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("a chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: entry"), "{seen}");
    assert!(seen.contains(&format!("id: {}", version + 1)), "{seen}");
    assert!(seen.contains("streamed &lt;b&gt;note&lt;/b&gt;"), "escaped: {seen}");
}

async fn pages_need_a_session_and_the_right_role(engine: Engine) {
    let app = App::start(engine).await;
    let anonymous = Browser::new(&app.node.base);
    anonymous.get("/").await.redirected_to("/login");
    anonymous
        .get("/incidents/INC-1")
        .await
        .redirected_to("/login?next=%2Fincidents%2FINC-1");
    anonymous.get("/admin/users").await.redirected_to("/login");
    assert_eq!(anonymous.get("/status").await.status, 200);
    let login = anonymous.get("/login").await;
    assert!(login.body.contains("name=\"email\""));
    assert!(login.body.contains("name=\"password\""));
    let (agent, _) = signed_in(&app, "agent", "Ag").await;
    assert_eq!(agent.get("/admin/users").await.status, 403);
    let token = agent.get("/").await.csrf();
    let made = agent
        .post(
            "/admin/users",
            &[
                ("_csrf", &token),
                ("name", "X"),
                ("email", "x@example.test"),
                ("role", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(made.status, 403);
    assert!(
        app.admin.get("/api/v1/users").await.ok()["items"]
            .as_array()
            .is_some_and(|u| u.iter().all(|u| u["email"] != "x@example.test"))
    );
    let (user, _) = signed_in(&app, "end_user", "Usr").await;
    user.get("/").await.redirected_to("/portal");
    assert_eq!(user.get("/admin").await.status, 403);
    let page = agent.get("/").await;
    for header in ["content-security-policy", "x-frame-options"] {
        let response = agent
            .http
            .get(format!("{}/", agent.base))
            .header("cookie", agent.cookie_header())
            .send()
            .await
            .expect("answer");
        assert!(response.headers().contains_key(header), "{header} is set");
    }
    assert!(page.body.contains("Sign out"));
    // Open redirects are refused: `next` must be a local path.
    let (_, email) = person(&app, "agent", "Nx").await;
    let outside = Browser::new(&app.node.base);
    let form = outside.get("/login?next=//evil.example/").await;
    let token = form.csrf();
    let signed = outside
        .post(
            "/login",
            &[
                ("email", email.as_str()),
                ("password", PASSWORD),
                ("_csrf", &token),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(signed.location.as_deref(), Some("/"));
}

async fn changing_the_password_needs_the_current_one_and_ends_other_sessions(engine: Engine) {
    let app = App::start(engine).await;
    let (id, email) = person(&app, "agent", "Pat").await;
    let laptop = Browser::new(&app.node.base);
    laptop.sign_in(&email, PASSWORD).await.redirected_to("/");
    let phone = Browser::new(&app.node.base);
    phone.sign_in(&email, PASSWORD).await.redirected_to("/");
    let wrong = laptop
        .submit(
            "/account",
            "/account/password",
            &[
                ("current", "nope"),
                ("new", "a much newer secret"),
                ("confirm", "a much newer secret"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let differ = laptop
        .submit(
            "/account",
            "/account/password",
            &[
                ("current", PASSWORD),
                ("new", "a much newer secret"),
                ("confirm", "another one entirely"),
            ],
        )
        .await;
    assert_eq!(differ.status, 422);
    let changed = laptop
        .submit(
            "/account",
            "/account/password",
            &[
                ("current", PASSWORD),
                ("new", "a much newer secret"),
                ("confirm", "a much newer secret"),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(laptop.get("/").await.status, 200, "this session goes on");
    phone.get("/").await.redirected_to("/login");
    assert_eq!(Browser::new(&app.node.base).sign_in(&email, PASSWORD).await.status, 401);
    Browser::new(&app.node.base)
        .sign_in(&email, "a much newer secret")
        .await
        .redirected_to("/");
    // Disabling someone signs them out.
    let admin = Browser::new(&app.node.base);
    let (_, admin_email) = person(&app, "admin", "Adm").await;
    admin.sign_in(&admin_email, PASSWORD).await.redirected_to("/");
    admin
        .submit("/admin/users", &format!("/admin/users/{id}"), &[("op", "disable")])
        .await;
    laptop.get("/").await.redirected_to("/login");
}

async fn agents_save_queue_views_and_see_team_boards(engine: Engine) {
    let app = App::start(engine).await;
    let (browser, me) = signed_in(&app, "agent", "Vic").await;
    app.admin
        .post(
            "/api/v1/teams",
            json!({"name": "Network", "members": [me], "wip_limits": {"accepted": 1}}),
        )
        .await
        .ok();
    let one = app
        .agent
        .incident(json!({"title": "Switch down in B2", "team": "Network", "impact": 1, "urgency": 2}))
        .await;
    let two = app
        .agent
        .incident(json!({"title": "Wifi slow in B3", "team": "Network"}))
        .await;
    app.agent.incident(json!({"title": "Unrelated printer"})).await;
    app.agent.act(&one, "accept", json!({})).await.ok();
    app.agent.act(&two, "accept", json!({})).await.ok();
    let filtered = browser.get("/?state=open&team=Network&q=Switch").await;
    assert!(filtered.body.contains("Switch down in B2"));
    assert!(!filtered.body.contains("Wifi slow in B3"));
    assert!(!filtered.body.contains("Unrelated printer"));
    let saved = browser
        .submit(
            "/",
            "/views",
            &[
                ("name", "Network switches"),
                ("query", "state=open&team=Network&q=Switch"),
            ],
        )
        .await;
    saved.redirected_to("/?state=open&team=Network&q=Switch");
    let queue = browser.get("/").await;
    assert!(queue.body.contains("Network switches"), "the saved view is offered");
    assert!(queue.body.contains("Team Network"), "my team's queue is a tab");
    let board = browser.get("/teams/Network/board").await;
    assert_eq!(board.status, 200, "{}", board.body);
    assert!(board.body.contains("Switch down in B2"));
    assert!(
        board.body.contains("Over the WIP limit"),
        "two accepted over a limit of one"
    );
    assert!(!board.body.contains("Unrelated printer"));
}

async fn admins_manage_the_catalogue_integrations_and_rules_through_forms(engine: Engine) {
    let app = App::start(engine).await;
    let (admin, me) = signed_in(&app, "admin", "Ada").await;
    let team = admin
        .submit(
            "/admin/teams",
            "/admin/teams",
            &[
                ("name", "Messaging"),
                ("lead", &me),
                ("members", &me),
                ("wip_accepted", "3"),
            ],
        )
        .await;
    assert_eq!(team.status, 200, "{}", team.body);
    assert!(team.body.contains("Created."));
    let teams = app.admin.get("/api/v1/teams").await;
    let stored = &teams.ok()["items"][0];
    assert_eq!(stored["name"], "Messaging");
    assert_eq!(stored["wip_limits"]["accepted"], 3);
    let service = admin
        .submit(
            "/admin/services",
            "/admin/services",
            &[("name", "Mail"), ("team", "Messaging"), ("criticality", "high")],
        )
        .await;
    assert_eq!(service.status, 200, "{}", service.body);
    let service_id = app.admin.get("/api/v1/services").await.ok()["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ci = admin
        .submit(
            "/admin/cis",
            "/admin/cis",
            &[("name", "mx1"), ("kind", "server"), ("services", &service_id)],
        )
        .await;
    assert_eq!(ci.status, 200, "{}", ci.body);
    assert!(
        ci.body.contains("mx1") && ci.body.contains("Mail"),
        "the CI is listed with its service"
    );
    let duplicate = admin
        .submit(
            "/admin/services",
            "/admin/services",
            &[("name", "Mail"), ("description", "kept-words")],
        )
        .await;
    assert_eq!(duplicate.status, 422, "names are unique: {}", duplicate.body);
    assert!(duplicate.body.contains("already exists"));
    assert!(duplicate.body.contains("value=\"kept-words\""), "what was typed stays");

    let created = admin
        .submit(
            "/admin/integrations",
            "/admin/integrations",
            &[("name", "Prometheus"), ("kind", "alertmanager"), ("service", "Mail")],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let marker = "data-testid=\"integration-key\">";
    let start = created.body.find(marker).expect("the key is shown") + marker.len();
    let key: String = created.body[start..].chars().take_while(|c| *c != '<').collect();
    assert_eq!(key.len(), 32, "a 32-character key: {key}");
    assert!(
        !admin.get("/admin/integrations").await.body.contains(&key),
        "the key is shown only once"
    );
    let event = app
        .agent
        .send(
            app.agent
                .http
                .post(format!("{}/api/v1/integrations/{key}/events", app.agent.base)),
            Some(json!({"summary": "mx1 queue growing", "dedup_key": "mx1-queue", "severity": "warning"})),
        )
        .await;
    assert_eq!(event.status, 202, "the shown key works: {}", event.body);

    // A service still named by a CI cannot go; once the CI is gone it can.
    let ci_id = app.admin.get("/api/v1/cis").await.ok()["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let blocked = admin
        .submit("/admin/services", &format!("/admin/services/{service_id}/delete"), &[])
        .await;
    assert_eq!(blocked.status, 409, "{}", blocked.status);
    let gone = admin
        .submit("/admin/cis", &format!("/admin/cis/{ci_id}/delete"), &[])
        .await;
    assert_eq!(gone.status, 200);
    assert!(gone.body.contains("Deleted."));
    assert!(
        app.admin.get("/api/v1/cis").await.ok()["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    let bad = admin
        .submit("/admin/rules", "/admin/rules", &[("json", "{\"name\": \"half")])
        .await;
    assert!(bad.status == 400 || bad.status == 422, "{}", bad.status);
    assert!(
        bad.body.contains("{&quot;name&quot;: &quot;half"),
        "the typed JSON is kept"
    );
    let rule = r#"{"name": "Mail to Messaging", "when": {"service": "Mail"}, "then": {"team": "Messaging"}}"#;
    let good = admin.submit("/admin/rules", "/admin/rules", &[("json", rule)]).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert!(good.body.contains("Mail to Messaging"));
    let routed = app
        .agent
        .incident(json!({"title": "Mail slow", "service": "Mail"}))
        .await;
    assert_eq!(
        routed["team"], "Messaging",
        "the rule made in the page classifies new incidents"
    );
    let rules = app.admin.get("/api/v1/rules").await;
    let rule_id = rules.ok()["items"][0]["id"].as_str().unwrap_or_default().to_string();
    let deleted = admin
        .submit("/admin/rules", &format!("/admin/rules/{rule_id}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 200);
    assert!(
        app.admin.get("/api/v1/rules").await.ok()["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let agent = Browser::new(&app.node.base);
    let (_, email) = person(&app, "agent", "Ag").await;
    agent.sign_in(&email, PASSWORD).await.redirected_to("/");
    let token = agent.get("/").await.csrf();
    let refused = agent
        .post("/admin/teams", &[("_csrf", &token), ("name", "Sneaky")])
        .await;
    assert_eq!(refused.status, 403, "only admins change the catalogue");
}

async fn agents_reclassify_and_filter_by_owner_from_the_pages(engine: Engine) {
    let app = App::start(engine).await;
    app.admin.post("/api/v1/services", json!({"name": "Print"})).await.ok();
    let incident = app
        .agent
        .incident(json!({"title": "Toner empty", "impact": 4, "urgency": 4}))
        .await;
    let key = key(&incident);
    let (browser, me) = signed_in(&app, "agent", "Rex").await;
    let page = format!("/incidents/{key}");
    let done = browser
        .submit(
            &page,
            &format!("{page}/reclassify"),
            &[
                ("impact", "2"),
                ("urgency", "2"),
                ("service", "Print"),
                ("category", "hardware"),
                ("major", "true"),
            ],
        )
        .await;
    done.redirected_to(&page);
    let stored = app.agent.get(&format!("/api/v1/incidents/{key}")).await;
    let stored = stored.ok();
    assert_eq!(stored["priority"], "P3", "impact 2 × urgency 2");
    assert_eq!(stored["service"], "Print");
    assert_eq!(stored["category"], "hardware");
    assert_eq!(stored["major"], true);
    let refused = browser
        .submit(
            &page,
            &format!("{page}/reclassify"),
            &[("impact", "7"), ("urgency", "2")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("impact must be 1, 2, 3 or 4"));
    // The owner filter offers every agent and keeps to their incidents.
    app.agent.act(&incident, "assign", json!({"owner": me})).await.ok();
    app.agent.incident(json!({"title": "Someone else's"})).await;
    let queue = browser.get(&format!("/?state=open&owner={me}")).await;
    assert!(
        queue.body.contains(&format!("<option value=\"{}\"", app.agent.id)),
        "other agents are offered"
    );
    assert!(queue.body.contains("Toner empty"));
    assert!(!queue.body.contains("Someone else"));
}

async fn the_dashboard_counts_the_backlog_and_drills_down_to_the_incidents_behind_a_metric(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let done = a.incident(json!({"title": "Fixed last week"})).await;
    a.act(&done, "accept", json!({})).await.ok();
    a.act(&done, "resolve", json!({"code": "fixed", "notes": "done"}))
        .await
        .ok();
    let waiting = a.incident(json!({"title": "Still open"})).await;
    a.act(&waiting, "accept", json!({})).await.ok();
    a.incident(json!({"title": "Brand new"})).await;
    let (browser, _) = signed_in(&app, "agent", "Dash").await;
    let page = browser.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = |state: &str| {
        let start = page
            .body
            .find(&format!("<th scope=\"row\">{state}</th>"))
            .expect("a row per open state");
        page.body[start..].split("</tr>").next().unwrap_or_default().to_string()
    };
    assert!(row("New").contains("<a href=\"/?state=new\">1<"), "{}", row("New"));
    assert!(
        row("Accepted").contains("<a href=\"/?state=accepted\">1<"),
        "{}",
        row("Accepted")
    );
    assert!(page.body.contains("<svg class=\"chart\""), "trend charts are drawn");
    assert!(page.body.contains("Speed vs effectiveness"));
    let monthly = browser.get("/dashboard?by=month").await;
    assert_eq!(monthly.status, 200);
    // The count of resolutions this period links to the incidents behind it.
    let marker = "/dashboard/incidents?family=resolved&amp;";
    let start = page.body.rfind(marker).expect("a drill-down link");
    let href = page.body[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    let behind = browser.get(&href).await;
    assert_eq!(behind.status, 200, "{}", behind.body);
    assert!(behind.body.contains("Fixed last week"), "{}", behind.body);
    assert!(!behind.body.contains("Still open"));
    let bad = browser.get("/dashboard/incidents?family=colour&from=x&to=y").await;
    assert_eq!(bad.status, 422);
    let (user, _) = signed_in(&app, "end_user", "Eu").await;
    user.get("/dashboard").await.redirected_to("/portal");
}

/// Acts on an incident with a claimed time.
async fn claimed(caller: &Caller, incident: &Value, action: &str, when: &str, body: Value) {
    let mut body = body;
    body["occurred_at"] = json!(when);
    let answer = caller.act(incident, action, body).await;
    assert!(answer.status.is_success(), "{action} at {when}: {}", answer.body);
}

/// The card of one metric on the dashboard (its `<figure>`).
fn metric_card<'a>(page: &'a Page, key: &str) -> &'a str {
    let id = format!("id=\"metric-{}\"", key.replace('.', "-"));
    let start = page.body.find(&id).unwrap_or_else(|| panic!("a card for {key}"));
    let rest = &page.body[start..];
    &rest[..rest.find("</figure>").unwrap_or(rest.len())]
}

/// The first drill-down link of a card: the incidents behind the latest value.
fn first_drill_down(card: &str) -> String {
    let start = card.find("/dashboard/incidents?").expect("a drill-down link");
    card[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&")
}

async fn the_dashboard_shows_every_metric_this_week_with_its_change_and_lists_the_incidents_counted(engine: Engine) {
    use keel_store::Clock;
    const HOUR: i64 = 3_600_000_000;
    let app = App::start(engine).await;
    let a = &app.agent;
    // The node's clock moves to Thursday noon of next week (UTC), so that the
    // current week has room for a history claimed in the past.
    let now = app.node.clock.now().as_micros();
    let days = now.div_euclid(24 * HOUR);
    let this_monday = (days - (days + 3).rem_euclid(7)) * 24 * HOUR;
    let week = this_monday + 7 * 24 * HOUR;
    app.node.clock.advance(week + 84 * HOUR - now);
    let time =
        |base: i64, hours: f64| keel_domain::Timestamp::from_micros(base + (hours * HOUR as f64) as i64).to_string();
    let h = |hours: f64| time(week, hours);
    let p = |hours: f64| time(week - 7 * 24 * HOUR, hours);
    let policy = json!({"name": "Standard", "targets": [
        {"priority": "P1", "response": "1h", "resolution": "3h"},
        {"priority": "P2", "response": "1h", "resolution": "3h"},
        {"priority": "P3", "response": "1h", "resolution": "3h"},
        {"priority": "P4", "response": "1h", "resolution": "3h"},
        {"priority": "P5", "response": "1h", "resolution": "3h"}]});
    let created = app.admin.post("/api/v1/sla-policies", policy).await;
    assert_eq!(created.status, 201, "{}", created.body);

    // This week. A: seen by monitoring 1 h before it was reported; accepted after
    // 30 min, diagnosed 1 h later, resolved with a known solution, closed with a 4.
    let disk = a
        .incident(json!({"title": "Disk full on db1", "source": "monitoring",
            "observed_at": h(0.0), "occurred_at": h(1.0)}))
        .await;
    // B: reported by a user 3 h after it began; accepted after 1 h (late for its
    // SLA), diagnosed 3 h later, 2 h waiting for the user, moved to another team and
    // owner, resolved 10 h after detection (late), closed without a survey answer.
    let mail = a
        .incident(json!({"title": "Mail slow", "team": "Desk", "observed_at": h(2.0), "occurred_at": h(5.0)}))
        .await;
    // C: resolved by automation 30 min after detection, never accepted.
    let backup = a
        .incident(json!({"title": "Backup job failed", "source": "monitoring", "occurred_at": h(20.0)}))
        .await;
    // D: accepted after 15 min, resolved, reopened, resolved again 7.5 h after detection.
    let vpn = a.incident(json!({"title": "VPN drops", "occurred_at": h(22.0)})).await;
    // E: diagnosed this week but cancelled: it counts for nothing.
    let duplicate = a
        .incident(json!({"title": "Duplicate alarm", "occurred_at": h(30.0)}))
        .await;
    // The week before. F: accepted and diagnosed then, still open. G: done then.
    let printer = a
        .incident(json!({"title": "Printer jam", "occurred_at": p(10.0)}))
        .await;
    let wiki = a.incident(json!({"title": "Slow wiki", "occurred_at": p(20.0)})).await;
    // The SLA sweep announces the targets (response in 1 h, resolution in 3 h).
    keel_http::workers::sweep_once(&app.node.state).await.expect("sweep");

    claimed(a, &disk, "accept", &h(1.5), json!({})).await;
    claimed(a, &disk, "diagnose", &h(2.5), json!({"cause": "logs"})).await;
    claimed(
        a,
        &disk,
        "resolve",
        &h(3.0),
        json!({"code": "fixed", "notes": "rotated", "known_solution": true}),
    )
    .await;
    claimed(a, &disk, "close", &h(4.0), json!({"satisfaction": 4})).await;
    claimed(
        a,
        &backup,
        "resolve",
        &h(20.5),
        json!({"code": "fixed", "notes": "retried", "automated": true}),
    )
    .await;
    claimed(a, &vpn, "accept", &h(22.25), json!({})).await;
    claimed(
        a,
        &vpn,
        "resolve",
        &h(23.0),
        json!({"code": "fixed", "notes": "restart"}),
    )
    .await;
    claimed(a, &vpn, "reopen", &h(24.0), json!({"reason": "drops again"})).await;
    claimed(
        a,
        &vpn,
        "resolve",
        &h(29.5),
        json!({"code": "fixed", "notes": "firmware"}),
    )
    .await;
    claimed(a, &duplicate, "accept", &h(30.5), json!({})).await;
    claimed(a, &duplicate, "diagnose", &h(31.0), json!({"note": "same as db1"})).await;
    claimed(a, &duplicate, "cancel", &h(32.0), json!({"reason": "duplicate"})).await;
    claimed(a, &printer, "accept", &p(11.0), json!({})).await;
    claimed(a, &printer, "diagnose", &p(12.0), json!({"cause": "roller"})).await;
    claimed(a, &wiki, "accept", &p(22.0), json!({})).await;
    claimed(a, &wiki, "diagnose", &p(23.0), json!({"cause": "cache"})).await;
    claimed(
        a,
        &wiki,
        "resolve",
        &p(24.0),
        json!({"code": "fixed", "notes": "cache"}),
    )
    .await;
    claimed(a, &wiki, "close", &p(25.0), json!({"satisfaction": 2})).await;
    // B's targets pass before anyone acts on it: both are breached.
    app.node.clock.advance(4 * HOUR);
    keel_http::workers::sweep_once(&app.node.state).await.expect("sweep");
    claimed(a, &mail, "accept", &h(6.0), json!({})).await;
    claimed(a, &mail, "diagnose", &h(9.0), json!({"cause": "queue"})).await;
    claimed(a, &mail, "hold", &h(10.0), json!({"reason": "awaiting_user"})).await;
    claimed(a, &mail, "resume", &h(12.0), json!({})).await;
    claimed(
        a,
        &mail,
        "assign",
        &h(13.0),
        json!({"team": "Mail", "owner": app.manager.id}),
    )
    .await;
    claimed(
        a,
        &mail,
        "resolve",
        &h(15.0),
        json!({"code": "fixed", "notes": "purged"}),
    )
    .await;
    claimed(a, &mail, "close", &h(16.0), json!({})).await;

    let (browser, _) = signed_in(&app, "incident_manager", "Ima").await;
    let page = browser.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for section in ["Detection", "Speed", "Effectiveness", "Users", "Workload and waiting"] {
        assert!(page.body.contains(&format!(">{section}</h2>")), "a section {section}");
    }
    assert!(page.body.contains("Speed vs effectiveness"));
    // (metric, this week's value, of incidents, change against the week before)
    let expected = [
        (
            "detection_lag.median_secs",
            "1.0 h",
            2,
            "No change to show: no value for the previous week.",
        ),
        (
            "detected_by_monitoring",
            "50 %",
            4,
            "Up </span>50 points vs previous week <span class=\"verdict\">(better)",
        ),
        (
            "time_to_acceptance.median_secs",
            "30 min",
            3,
            "Down </span>50 % vs previous week <span class=\"verdict\">(better)",
        ),
        (
            "time_of_diagnosis.median_secs",
            "1.0 h",
            2,
            "Unchanged vs previous week",
        ),
        (
            "time_to_resolve.median_secs",
            "2.0 h",
            4,
            "Down </span>50 % vs previous week <span class=\"verdict\">(better)",
        ),
        (
            "acceptance_target_met",
            "75 %",
            4,
            "Down </span>25 points vs previous week <span class=\"verdict\">(worse)",
        ),
        (
            "resolution_target_met",
            "75 %",
            4,
            "Down </span>25 points vs previous week <span class=\"verdict\">(worse)",
        ),
        (
            "first_time_resolution",
            "50 %",
            4,
            "Down </span>50 points vs previous week <span class=\"verdict\">(worse)",
        ),
        (
            "reopen_rate",
            "25 %",
            4,
            "Up </span>25 points vs previous week <span class=\"verdict\">(worse)",
        ),
        (
            "known_solution_reuse",
            "25 %",
            4,
            "Up </span>25 points vs previous week <span class=\"verdict\">(better)",
        ),
        (
            "resolved_automatically",
            "25 %",
            4,
            "Up </span>25 points vs previous week <span class=\"verdict\">(better)",
        ),
        (
            "user_satisfaction.mean",
            "4.0",
            1,
            "Up </span>2.0 vs previous week <span class=\"verdict\">(better)",
        ),
        (
            "user_satisfaction.response_rate",
            "50 %",
            2,
            "Down </span>50 points vs previous week <span class=\"verdict\">(worse)",
        ),
        (
            "reassignments.team_changes",
            "0.25",
            4,
            "Up </span>0.25 vs previous week <span class=\"verdict\">(worse)",
        ),
        (
            "reassignments.owner_changes",
            "0.25",
            4,
            "Up </span>0.25 vs previous week <span class=\"verdict\">(worse)",
        ),
        (
            "waiting_share",
            "10 %",
            4,
            "Up </span>10 points vs previous week <span class=\"verdict\">(worse)",
        ),
    ];
    for (key, value, count, trend) in expected {
        let card = metric_card(&page, key);
        assert!(card.contains("role=\"img\""), "{key} has a chart: {card}");
        assert!(
            card.contains(&format!("<span class=\"value\">{value}</span>")),
            "{key} is {value} this week: {card}"
        );
        assert!(
            card.contains(&format!(">{count} incident{}<", if count == 1 { "" } else { "s" })),
            "{key} of {count}: {card}"
        );
        assert!(card.contains(trend), "{key} changed by {trend}: {card}");
    }
    // The 90th percentiles and the hold reasons are in the values tables.
    for (key, cell) in [
        ("detection_lag.median_secs", "3.0 h"),
        ("time_to_acceptance.median_secs", "1.0 h"),
        ("time_of_diagnosis.median_secs", "3.0 h"),
        ("time_to_resolve.median_secs", "10.0 h"),
    ] {
        let card = metric_card(&page, key);
        assert!(card.contains("<th scope=\"col\">p90</th>"), "{card}");
        assert!(card.contains(&format!("<td>{cell}</td>")), "{key} p90 {cell}: {card}");
    }
    let waiting = metric_card(&page, "waiting_share");
    assert!(waiting.contains("<th scope=\"col\">Awaiting user</th>"), "{waiting}");
    assert!(
        waiting.contains("<td>10 %</td><td>10 %</td><td>0 %</td><td>0 %</td><td>0 %</td>"),
        "all of the waiting was for the user: {waiting}"
    );
    // What the timeline cannot give says so instead of drawing an empty chart.
    for (key, note) in [
        (
            "incident_model_use",
            "Not measured yet: keel has no incident models yet.",
        ),
        (
            "resolved_before_users_reported",
            "Not measured yet: the timeline does not record linked user reports yet.",
        ),
    ] {
        let card = metric_card(&page, key);
        assert!(card.contains(note), "{key}: {card}");
        assert!(!card.contains("<svg"), "{key} has no chart: {card}");
    }
    // The count behind this week's time of diagnosis lists exactly the incidents
    // diagnosed (after acceptance) this week: not the cancelled one, not last week's.
    let href = first_drill_down(metric_card(&page, "time_of_diagnosis.median_secs"));
    assert!(href.contains("family=diagnosed&"), "{href}");
    let behind = browser.get(&href).await;
    assert_eq!(behind.status, 200, "{}", behind.body);
    assert!(behind.body.contains(": 2 incidents."), "{}", behind.body);
    for title in ["Disk full on db1", "Mail slow"] {
        assert!(behind.body.contains(title), "{title}: {}", behind.body);
    }
    for title in [
        "Duplicate alarm",
        "Printer jam",
        "Slow wiki",
        "Backup job failed",
        "VPN drops",
    ] {
        assert!(!behind.body.contains(title), "{title}: {}", behind.body);
    }
    // The response-target count lists the incidents with a verdict this week.
    let href = first_drill_down(metric_card(&page, "acceptance_target_met"));
    let responded = browser.get(&href).await;
    assert!(responded.body.contains(": 4 incidents."), "{}", responded.body);
    assert!(!responded.body.contains("Printer jam"), "{}", responded.body);
    let monthly = browser.get("/dashboard?by=month").await;
    assert_eq!(monthly.status, 200);
    assert!(monthly.body.contains("vs previous month") || monthly.body.contains("No change to show"));
}

async fn incident_managers_record_capability_evidence_on_the_capability_page(engine: Engine) {
    let app = App::start(engine).await;
    let (manager, _) = signed_in(&app, "incident_manager", "Maya").await;
    let page = manager.get("/capability").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Level reached: <strong id=\"level\">1</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No evidence yet"));
    // A verdict with its evidence (user text, escaped), then back to the page.
    let recorded = manager
        .submit(
            "/capability",
            "/capability/detect-reporting",
            &[
                ("met", "yes"),
                ("note", "Posters <b>and</b> the intranet"),
                ("threshold", ""),
            ],
        )
        .await;
    recorded.redirected_to("/capability#c-detect-reporting");
    let after = manager.get("/capability").await.body;
    assert!(
        after.contains("Recorded: <q>Posters &lt;b&gt;and&lt;/b&gt; the intranet</q>"),
        "{after}"
    );
    let stored = app.agent.get("/api/v1/capability").await.ok().clone();
    let reporting = stored["criteria"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["criterion"]["id"] == "detect-reporting"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(reporting["met"], true, "{reporting}");
    // A threshold that is not a number comes back with the reason.
    let refused = manager
        .submit(
            "/capability",
            "/capability/resolve-in-target",
            &[("threshold", "ninety")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("the threshold must be a number"),
        "{}",
        refused.body
    );
    // Agents see the assessment without forms, and cannot record.
    let (agent, _) = signed_in(&app, "agent", "Sam").await;
    let seen = agent.get("/capability").await;
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains("action=\"/capability/"), "agents get no forms");
    let token = seen.csrf();
    let denied = agent
        .post(
            "/capability/detect-reporting",
            &[("_csrf", token.as_str()), ("met", "no")],
        )
        .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
}
