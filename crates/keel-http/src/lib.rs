//! keel's HTTP API on axum: incidents, users and tokens under `/api/v1`,
//! health and readiness, Prometheus metrics and the generated OpenAPI
//! document. [`router`] builds the whole app from an [`AppState`], so tests
//! and `keel serve` run exactly the same thing.

pub mod alertmanager;
pub mod auth;
mod capability;
pub mod catalogue;
mod dto;
pub mod error;
mod extract;
pub mod facts;
pub mod import;
mod incidents;
pub mod ingest;
mod integrations;
mod maintenance;
mod oncall;
mod ops;
pub mod pagerduty;
mod practice;
mod rules;
pub mod sla;
mod users;
pub mod web;
pub mod workers;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use keel_domain::PriorityMatrix;
use keel_store::{Clock, Store};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{TOKEN_PREFIX, hash_token, new_token_secret};
pub use error::ApiError;

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Events per second one integration key may send to this node before
    /// getting 429 with `Retry-After` (senders retry those); `None`: no limit.
    pub ingest_rate_per_key: Option<f64>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            ingest_rate_per_key: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub matrix: Arc<PriorityMatrix>,
    pub tokens: Arc<auth::TokenCache>,
    pub ingest_limit: Arc<ingest::RateLimiter>,
    pub integrations: Arc<ingest::IntegrationCache>,
    pub catalogue_cache: Arc<catalogue::CatalogueCache>,
    pub metrics: PrometheusHandle,
    pub openapi: Arc<utoipa::openapi::OpenApi>,
    /// The metrics' per-incident facts held by this node.
    pub facts: Arc<facts::FactsCache>,
}

impl AppState {
    /// State for a store, with the process-wide metrics recorder.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, matrix: PriorityMatrix) -> Self {
        Self {
            store,
            clock,
            matrix: Arc::new(matrix),
            tokens: Arc::new(auth::TokenCache::default()),
            ingest_limit: Arc::new(ingest::RateLimiter::new(None)),
            integrations: Arc::new(ingest::IntegrationCache::default()),
            catalogue_cache: Arc::new(catalogue::CatalogueCache::default()),
            metrics: metrics_handle(),
            openapi: Arc::new(openapi_document()),
            facts: Arc::new(facts::FactsCache::default()),
        }
    }
}

/// Buckets of every `*_seconds` histogram: 0.5 ms to 5 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The Prometheus recorder is process-wide; install it once. Histograms
/// keep raw samples until folded into their buckets, so a thread folds
/// them every few seconds: memory stays flat however long nobody scrapes.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                &LATENCY_BUCKETS,
            ) {
                Ok(with_buckets) => with_buckets,
                Err(error) => {
                    tracing::warn!(%error, "latency buckets refused; histograms become summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("keel-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "no metrics upkeep thread; histogram samples pile up until scraped");
            }
            handle
        })
        .clone()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "keel", description = "Incident management: the record, its lifecycle and its true timeline."),
    modifiers(&BearerAuth),
    tags((name = "incidents"), (name = "users"), (name = "integrations"), (name = "ingest"), (name = "catalogue"), (name = "on-call"), (name = "sla"), (name = "metrics"), (name = "import"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every error answer is problem+json, and every route can answer 400 (bad
/// syntax, query or header) and 401 (no or bad token): say so once, here,
/// rather than on each handler.
struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, RefOr, content::ContentBuilder, response::ResponseBuilder};
        let problem = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let mut always = vec![("400", "Malformed request")];
                if operation.security.is_some() {
                    always.push(("401", "Missing or invalid token"));
                }
                if operation.request_body.is_some() {
                    always.extend([("413", "Body too large"), ("415", "Body is not JSON")]);
                }
                for (status, description) in always {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
                }
                for (status, response) in &mut operation.responses.responses {
                    if status.as_str() >= "400"
                        && let RefOr::T(response) = response
                    {
                        response.content.clear();
                        response
                            .content
                            .insert("application/problem+json".to_string(), problem());
                    }
                }
            }
        }
    }
}

/// The OpenAPI document of every `/api` route, as served.
#[must_use]
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::Modify;
    let mut document = api_routes().split_for_parts().1;
    // Paths exist only once the router has collected them, so this runs here.
    ProblemResponses.modify(&mut document);
    document
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(incidents::create, incidents::list))
        .routes(routes!(incidents::show, incidents::patch))
        .routes(routes!(incidents::act))
        .routes(routes!(incidents::comment))
        .routes(routes!(incidents::timeline))
        .routes(routes!(incidents::verify))
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::show, users::patch))
        .routes(routes!(users::me))
        .routes(routes!(users::create_token))
        .routes(routes!(integrations::create, integrations::list))
        .routes(routes!(integrations::show, integrations::patch))
        .routes(routes!(integrations::rotate))
        .routes(routes!(ingest::generic))
        .routes(routes!(ingest::list))
        .routes(routes!(alertmanager::alertmanager))
        .routes(routes!(alertmanager::grafana))
        .routes(routes!(maintenance::create, maintenance::list))
        .routes(routes!(maintenance::delete))
        .routes(routes!(catalogue::create_team, catalogue::list_teams))
        .routes(routes!(
            catalogue::show_team,
            catalogue::patch_team,
            catalogue::delete_team
        ))
        .routes(routes!(catalogue::create_service, catalogue::list_services))
        .routes(routes!(
            catalogue::show_service,
            catalogue::patch_service,
            catalogue::delete_service
        ))
        .routes(routes!(catalogue::create_ci, catalogue::list_cis))
        .routes(routes!(catalogue::show_ci, catalogue::patch_ci, catalogue::delete_ci))
        .routes(routes!(catalogue::impact))
        .routes(routes!(catalogue::backlog))
        .routes(routes!(rules::create, rules::list))
        .routes(routes!(rules::show, rules::patch, rules::delete))
        .routes(routes!(oncall::create, oncall::list))
        .routes(routes!(oncall::show, oncall::patch, oncall::delete))
        .routes(routes!(oncall::list_shifts))
        .routes(routes!(oncall::team_on_call))
        .routes(routes!(oncall::ical))
        .routes(routes!(oncall::create_escalation, oncall::list_escalations))
        .routes(routes!(
            oncall::show_escalation,
            oncall::patch_escalation,
            oncall::delete_escalation
        ))
        .routes(routes!(sla::create, sla::list))
        .routes(routes!(practice::report))
        .routes(routes!(capability::show))
        .routes(routes!(capability::record))
        .routes(routes!(import::import))
        .routes(routes!(sla::show, sla::patch, sla::delete))
}

/// The whole application.
pub fn router(mut state: AppState, config: &HttpConfig) -> Router {
    state.ingest_limit = Arc::new(ingest::RateLimiter::new(config.ingest_rate_per_key));
    let (api, _) = api_routes().split_for_parts();
    Router::new()
        .merge(api)
        .merge(web::routes())
        .route("/v2/enqueue", axum::routing::post(pagerduty::enqueue))
        .route("/api/v2/alerts", axum::routing::post(alertmanager::push))
        // Grafana's webhook contact point may be set to PUT.
        .route(
            "/api/v1/integrations/{key}/grafana",
            axum::routing::put(alertmanager::grafana),
        )
        .route("/healthz", get(ops::healthz))
        .route("/livez", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::prometheus))
        .route("/api/openapi.json", get(ops::openapi))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(ops::measure))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "an internal error occurred; it has been logged",
            )
            .into_response_ext()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        // Spans name the route's pattern, never the raw URI: integration keys
        // travel in paths and calendar feeds may carry a token in the query.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("(unmatched)", axum::extract::MatchedPath::as_str);
                tracing::debug_span!("request", method = %request.method(), route)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(SequentialRequestId::default()))
        .with_state(state)
}

trait IntoResponseExt {
    fn into_response_ext(self) -> axum::response::Response;
}

impl IntoResponseExt for ApiError {
    fn into_response_ext(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

/// A new time-ordered identifier (UUID v7).
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Request ids: a random per-process prefix and a counter. Unique enough to
/// follow one request through the logs, without a random draw per request.
#[derive(Clone)]
struct SequentialRequestId {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for SequentialRequestId {
    fn default() -> Self {
        let prefix: String = new_token_secret().chars().skip(TOKEN_PREFIX.len()).take(8).collect();
        Self {
            prefix: Arc::from(prefix),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}
