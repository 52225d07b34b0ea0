//! The authentication layer in front of every handler: reads the bearer token, verifies
//! it, checks the RPC's [`Access`] in [`RPC_ACCESS`](super::RPC_ACCESS), and puts the
//! [`Principal`] and the [`Access`] into the request for the handler's per-subject and
//! per-department checks. `UNAUTHENTICATED` without a valid token, `PERMISSION_DENIED`
//! without the scope, before any handler runs.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{Status, body::Body};
use tower_service::Service;

use super::{Access, AuthConfig, AuthMode, Principal, Verifier, access};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Wraps the whole router; built from `[auth]`.
#[derive(Clone)]
pub struct AuthLayer {
    /// `None`: `auth.mode = "off"`.
    verifier: Option<Arc<Verifier>>,
    open_health: bool,
    open_reflection: bool,
}

impl AuthLayer {
    /// The layer `config` describes (validated: a bad key is an error naming it).
    pub fn new(config: &AuthConfig) -> Result<Self, (String, String)> {
        let verifier = match config.mode {
            AuthMode::Off => {
                tracing::warn!(
                    "auth.mode = \"off\": every caller may publish, read and change everything"
                );
                None
            }
            AuthMode::Jwt => Some(Arc::new(config.verifier()?)),
        };
        Ok(Self {
            verifier,
            open_health: config.open_health,
            open_reflection: config.open_reflection,
        })
    }

    /// What a call to `path` with `authorization` (the header's value) may do: the
    /// principal and the RPC's access, `None` for open infrastructure (health,
    /// reflection), or the status to answer instead.
    pub fn decide(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<Option<(Principal, Access)>, Status> {
        if (self.open_health && path.starts_with("/grpc.health.v1.Health/"))
            || (self.open_reflection && path.starts_with("/grpc.reflection."))
        {
            return Ok(None);
        }
        let Some(verifier) = &self.verifier else {
            let access = access(path).unwrap_or(Access::Public);
            return Ok(Some((Principal::anonymous(), access)));
        };
        let rule = access(path);
        if rule == Some(Access::Public) {
            return Ok(None);
        }
        if rule == Some(Access::Optional) && authorization.is_none() {
            return Ok(None);
        }
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated(super::TokenError::Missing.to_string()))?;
        let principal = verifier
            .verify(token)
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        let Some(rule) = rule else {
            return Err(Status::permission_denied(format!(
                "{path} has no access rule: nobody may call it"
            )));
        };
        if !rule.admits(&principal) {
            return Err(Status::permission_denied(format!(
                "{} may not call {path}: it needs {}",
                principal.key(),
                rule.needs()
            )));
        }
        Ok(Some((principal, rule)))
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let decision = self.layer.decide(request.uri().path(), authorization);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match decision {
                Err(status) => {
                    tracing::info!(code = ?status.code(), reason = status.message(), "call refused");
                    Ok(status.into_http())
                }
                Ok(found) => {
                    if let Some((principal, access)) = found {
                        tracing::Span::current().record("enduser.id", principal.key());
                        request.extensions_mut().insert(principal);
                        request.extensions_mut().insert(access);
                    }
                    inner.call(request).await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use tonic::Code;

    use super::*;
    use crate::auth::{KeyConfig, Kind, Signer, generate_key};

    fn layer() -> (AuthLayer, Signer) {
        let (private, public) = generate_key();
        let config = AuthConfig {
            keys: vec![KeyConfig {
                id: "k1".into(),
                public_key: Some(public),
                public_key_file: None,
            }],
            ..AuthConfig::default()
        };
        let signer = Signer::new(&config, "k1", &private).expect("signer");
        (AuthLayer::new(&config).expect("layer"), signer)
    }

    fn bearer(signer: &Signer, kind: Kind, id: &str, scopes: &[&str]) -> String {
        let scopes: BTreeSet<String> = scopes.iter().map(|s| s.to_string()).collect();
        format!(
            "Bearer {}",
            signer
                .issue(kind, id, &scopes, Duration::from_secs(60))
                .expect("token")
        )
    }

    const PUBLISH: &str = "/zhida.policy.v1.PolicyService/CreateDraft";

    #[test]
    fn tokens_and_scopes_decide_before_any_handler() {
        let (layer, signer) = layer();
        let code =
            |path: &str, auth: Option<&str>| layer.decide(path, auth).err().map(|s| s.code());
        assert_eq!(code(PUBLISH, None), Some(Code::Unauthenticated));
        assert_eq!(
            code(PUBLISH, Some("Bearer nonsense")),
            Some(Code::Unauthenticated)
        );
        let citizen = bearer(&signer, Kind::Subject, "c-1", &[]);
        assert_eq!(code(PUBLISH, Some(&citizen)), Some(Code::PermissionDenied));
        let department = bearer(&signer, Kind::Department, "区科委", &[]);
        let (principal, access) = layer
            .decide(PUBLISH, Some(&department))
            .expect("allowed")
            .expect("a principal");
        assert_eq!(principal.id, "区科委");
        assert_eq!(access, Access::Scope(crate::auth::POLICY_PUBLISH));
        // Public and infrastructure calls need nothing.
        assert!(
            layer
                .decide("/zhida.policy.v1.PolicyService/ListTags", None)
                .is_ok()
        );
        assert!(layer.decide("/grpc.health.v1.Health/Check", None).is_ok());
        // A method missing from the table is refused even with a token.
        assert_eq!(
            code("/zhida.policy.v1.PolicyService/Nope", Some(&department)),
            Some(Code::PermissionDenied)
        );
    }

    #[test]
    fn an_optional_token_identifies_its_caller_but_is_not_needed() {
        let (layer, signer) = layer();
        const GET: &str = "/zhida.policy.v1.PolicyService/GetPolicy";
        assert_eq!(layer.decide(GET, None).expect("anyone may read"), None);
        let department = bearer(&signer, Kind::Department, "区科委", &[]);
        let (principal, access) = layer
            .decide(GET, Some(&department))
            .expect("allowed")
            .expect("identified");
        assert_eq!(principal.id, "区科委");
        assert_eq!(access, Access::Optional);
        assert_eq!(
            layer
                .decide(GET, Some("Bearer forged"))
                .err()
                .map(|s| s.code()),
            Some(Code::Unauthenticated),
            "a token that is sent must be valid"
        );
    }

    #[test]
    fn auth_off_lets_everything_through_as_the_anonymous_operator() {
        let layer = AuthLayer::new(&AuthConfig {
            mode: AuthMode::Off,
            ..AuthConfig::default()
        })
        .expect("layer");
        let (principal, _) = layer.decide(PUBLISH, None).expect("ok").expect("principal");
        assert_eq!(principal, Principal::anonymous());
    }
}
