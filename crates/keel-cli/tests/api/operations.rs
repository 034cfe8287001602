//! Operating keel: health, readiness, Prometheus metrics and the generated
//! OpenAPI document.

use serde_json::json;

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(health_readiness_and_metrics_answer, openapi_documents_every_api_route);

async fn health_readiness_and_metrics_answer(engine: Engine) {
    let app = App::start(engine).await;
    assert_eq!(
        app.node.store.engine(),
        if engine == Engine::Sqlite { "sqlite" } else { "postgres" }
    );
    let a = &app.agent;
    assert_eq!(
        a.http
            .get(format!("{}/healthz", a.base))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        a.http
            .get(format!("{}/readyz", a.base))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    a.incident(json!({"title": "counted"})).await;
    let metrics = a.http.get(format!("{}/metrics", a.base)).send().await.expect("metrics");
    assert!(
        metrics
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    let text = metrics.text().await.expect("text");
    assert!(text.contains("keel_incidents_registered_total"), "{text}");
    assert!(
        text.contains("keel_http_requests_total{method=\"POST\",route=\"/api/v1/incidents\",status=\"201\"}"),
        "{text}"
    );
    let request_id = a.http.get(format!("{}/healthz", a.base)).send().await.expect("healthz");
    assert!(request_id.headers().contains_key("x-request-id"));
}

async fn openapi_documents_every_api_route(engine: Engine) {
    let app = App::start(engine).await;
    let doc: serde_json::Value = app
        .agent
        .http
        .get(format!("{}/api/openapi.json", app.agent.base))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/actions/{action}",
        "/api/v1/incidents/{id}/comments",
        "/api/v1/incidents/{id}/timeline",
        "/api/v1/incidents/{id}/verify",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/tokens",
        "/api/v1/me",
        "/api/v1/integrations",
        "/api/v1/integrations/{id}",
        "/api/v1/integrations/{id}/rotate",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"]["IncidentView"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
