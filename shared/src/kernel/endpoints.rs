//! The endpoints every service has (health, readiness, metrics, audit keys) and the OpenAPI parts they share.

use std::sync::Arc;

use axum::{
    extract::{FromRef, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Kernel;
use crate::audit::Jwks;
use crate::{
    error::{ApiError, ErrorCode},
    verdict::ServiceName,
};

/// The OpenAPI parts every service shares.
#[derive(OpenApi)]
#[openapi(
    components(schemas(crate::error::Problem, crate::error::ErrorCode, crate::verdict::Outcome,
        crate::verdict::ReasonCode, crate::verdict::Reason, crate::verdict::ArtifactRef, crate::verdict::ModelRef,
        crate::verdict::ServiceName)),
    modifiers(&BearerAuth),
    tags((name = "operations", description = "Health, readiness, metrics and audit keys"))
)]
struct CommonApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "gateway_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Short-lived gateway JWT (EdDSA, ES256 or RS256) with iss, aud = the service, exp, iat \
                         (lifetime at most 15 minutes), scope, tenant and residency.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The base OpenAPI document of a service.
pub fn base_openapi(
    service: ServiceName,
    version: &str,
    description: &str,
) -> utoipa::openapi::OpenApi {
    let mut doc = CommonApi::openapi();
    doc.info.title = format!("idv {service}");
    doc.info.version = version.to_owned();
    doc.info.description = Some(description.to_owned());
    doc.info.license = Some(utoipa::openapi::License::new("Apache-2.0"));
    doc
}

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
    /// The service.
    pub service: ServiceName,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz(State(kernel): State<Arc<Kernel>>) -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        service: kernel.service(),
    })
}

/// Models are loaded and every region's store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, body = crate::error::Problem, content_type = "application/problem+json",
        description = "A store or component is not ready; `detail` names it")
))]
async fn readyz(State(kernel): State<Arc<Kernel>>) -> Result<axum::Json<Health>, ApiError> {
    kernel.readiness().await?;
    Ok(axum::Json(Health {
        status: "ready",
        service: kernel.service(),
    }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain")))]
async fn metrics_endpoint() -> Response {
    let mut res = crate::metrics::render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

/// Public keys that verify this service's audit tokens, including rotated-out ones.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", responses((status = 200, body = Jwks)))]
async fn jwks(State(kernel): State<Arc<Kernel>>) -> Response {
    let mut res = axum::Json(kernel.auditor().jwks()).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    res
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no route matches this path")
}

/// The endpoints every service has: health, readiness, metrics, audit keys.
pub fn common_routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_endpoint))
        .routes(routes!(jwks))
}

/// A service's routes plus the common ones, under its base document: the one place both the served router
/// and the OpenAPI document come from, so they cannot drift apart.
pub(super) fn with_common_routes<S>(
    doc: utoipa::openapi::OpenApi,
    service_routes: OpenApiRouter<S>,
) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    OpenApiRouter::with_openapi(doc)
        .merge(common_routes())
        .merge(service_routes)
}

/// A service's OpenAPI document, without building a kernel (for `<service> openapi` and the drift test).
pub fn openapi_document<S>(
    doc: utoipa::openapi::OpenApi,
    service_routes: OpenApiRouter<S>,
) -> utoipa::openapi::OpenApi
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    with_common_routes(doc, service_routes).into_openapi()
}
