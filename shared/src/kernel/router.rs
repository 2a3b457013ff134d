//! A service's router: its routes and the common ones, OpenAPI, the fallback and the middleware stack.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, FromRef},
    http::StatusCode,
    middleware,
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use super::{
    Kernel,
    endpoints::{not_found, with_common_routes},
};
use crate::{
    error::{ApiError, ErrorCode},
    http::{MakeRequestUlid, REQUEST_ID},
};

/// Assembles a service: its routes plus the common ones, OpenAPI at `/openapi.json` and `/docs`, the fallback,
/// and the middleware stack. Returns the router and the OpenAPI document (for the drift test).
pub fn assemble<S>(
    kernel: Arc<Kernel>,
    doc: utoipa::openapi::OpenApi,
    service_routes: OpenApiRouter<S>,
    state: S,
) -> (Router, utoipa::openapi::OpenApi)
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    let http = kernel.config().http;
    let (router, api) = with_common_routes(doc, service_routes).split_for_parts();
    let overloaded = |_: tower::BoxError| async {
        ApiError::new(
            ErrorCode::Overloaded,
            "too many requests in flight; retry shortly",
        )
        .retry_after(1)
    };
    // The documentation is merged before the layers, so its answers (and its 404s for unknown files) get a
    // request id, metrics and problem+json like every other response.
    let router = router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api.clone()))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(http.max_in_flight),
        )
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(http.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_secs),
        ))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(crate::http::problem_middleware))
        .layer(middleware::from_fn(crate::http::observe_middleware))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUlid))
        .layer(middleware::from_fn(crate::http::sanitize_request_id))
        .with_state(state);
    (router, api)
}
