//! A tiny path router: method + pattern (`/state/{key}`, `/files/{*rest}`) to handler.

use std::fmt;

use percent_encoding::percent_decode_str;

use super::{Method, Request, Response};
use crate::{Error, Result};

type Handler = Box<dyn Fn(Request, Params) -> Result<Response>>;

/// Path parameters captured by a pattern, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The value captured for `{name}` or `{*name}`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value captured for `name`, or [`Error::Invalid`] naming it.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| Error::Invalid(format!("missing path parameter `{name}`")))
    }

    /// All captures in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn segments(path: &str) -> Vec<&str> {
    let trimmed = trim(path);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

/// A path or pattern without its leading and one trailing `/`.
fn trim(path: &str) -> &str {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    trimmed.strip_suffix('/').unwrap_or(trimmed)
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Matches the request path's segments against `pattern`, reading the pattern as it goes
/// (a plugin builds its router in every fresh instance, so routing is on every request's
/// path): only captured parameters allocate.
fn match_segments(pattern: &str, parts: &[&str]) -> Option<Params> {
    let pattern = trim(pattern);
    let mut params = Params::default();
    let mut i = 0;
    for seg in pattern.split('/').filter(|_| !pattern.is_empty()) {
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(inner) => match inner.strip_prefix('*') {
                Some(name) => {
                    let rest = parts.get(i..).unwrap_or_default().join("/");
                    params.pairs.push((name.to_owned(), decode(&rest)));
                    return Some(params);
                }
                None => match parts.get(i) {
                    Some(value) if !value.is_empty() => {
                        params.pairs.push((inner.to_owned(), decode(value)))
                    }
                    _ => return None,
                },
            },
            None => {
                if parts.get(i) != Some(&seg) {
                    return None;
                }
            }
        }
        i += 1;
    }
    (parts.len() == i).then_some(params)
}

/// Matches `path` (percent-encoded, as in [`Request::path`]) against `pattern`.
///
/// Patterns are `/`-separated: literal segments match exactly, `{name}` captures one
/// non-empty segment, and a final `{*name}` captures the rest (possibly empty). A single
/// trailing `/` is ignored on both sides.
///
/// ```
/// let p = weft_sdk::http::match_path("/state/{key}", "/state/a%2Fb").unwrap();
/// assert_eq!(p.get("key"), Some("a/b"));
/// assert!(weft_sdk::http::match_path("/state/{key}", "/state/").is_none());
/// ```
pub fn match_path(pattern: &str, path: &str) -> Option<Params> {
    match_segments(pattern, &segments(path))
}

struct Route {
    method: Method,
    pattern: Box<str>,
    handler: Handler,
}

/// Routes requests by method and path pattern (see [`match_path`]); the first matching
/// route wins.
///
/// A handler returns `Result<Response>`, so `?` works; an error becomes
/// [`Response::error`]. A path no route matches gets 404; a path that matches only with
/// other methods gets 405 with an `allow` header.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|r| (&r.method, &r.pattern)))
            .finish()
    }
}

impl Router {
    /// A router without routes.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a route.
    pub fn route<F>(mut self, method: Method, pattern: &str, handler: F) -> Self
    where
        F: Fn(Request, Params) -> Result<Response> + 'static,
    {
        self.routes.push(Route {
            method,
            pattern: pattern.into(),
            handler: Box::new(handler),
        });
        self
    }

    /// Adds a `GET` route.
    pub fn get<F>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Request, Params) -> Result<Response> + 'static,
    {
        self.route(Method::Get, pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post<F>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Request, Params) -> Result<Response> + 'static,
    {
        self.route(Method::Post, pattern, handler)
    }

    /// Adds a `PUT` route.
    pub fn put<F>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Request, Params) -> Result<Response> + 'static,
    {
        self.route(Method::Put, pattern, handler)
    }

    /// Adds a `PATCH` route.
    pub fn patch<F>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Request, Params) -> Result<Response> + 'static,
    {
        self.route(Method::Patch, pattern, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete<F>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Request, Params) -> Result<Response> + 'static,
    {
        self.route(Method::Delete, pattern, handler)
    }

    /// Dispatches `request` to the first matching route.
    pub fn handle(&self, request: Request) -> Response {
        let mut allowed: Vec<&str> = Vec::new();
        let mut found = None;
        {
            let parts = segments(request.path());
            for route in &self.routes {
                let Some(params) = match_segments(&route.pattern, &parts) else {
                    continue;
                };
                if route.method == *request.method() {
                    found = Some((route, params));
                    break;
                }
                if !allowed.contains(&route.method.as_str()) {
                    allowed.push(route.method.as_str());
                }
            }
        }
        if let Some((route, params)) = found {
            return match (route.handler)(request, params) {
                Ok(response) => response,
                Err(e) => Response::error(&e),
            };
        }
        if allowed.is_empty() {
            return Response::not_found();
        }
        let message = format!(
            "method {} not allowed; allowed: {}",
            request.method(),
            allowed.join(", ")
        );
        Response::json(
            405,
            &serde_json::json!({ "error": "method-not-allowed", "message": message }),
        )
        .with_header("allow", allowed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_param_and_rest_segments() {
        assert!(match_path("/", "/").is_some());
        assert!(match_path("/", "").is_some());
        assert!(match_path("/whoami", "/whoami/").is_some());
        assert!(match_path("/whoami", "/whoami/x").is_none());
        assert!(match_path("/whoami/x", "/whoami").is_none());

        let p = match_path("/state/{key}", "/state/caf%C3%A9").unwrap();
        assert_eq!(p.get("key"), Some("café"));
        assert!(match_path("/state/{key}", "/state").is_none());
        assert!(match_path("/state/{key}", "/state//").is_none());

        let p = match_path("/files/{*rest}", "/files/a/b%20c").unwrap();
        assert_eq!(p.get("rest"), Some("a/b c"));
        assert_eq!(
            match_path("/files/{*rest}", "/files").unwrap().get("rest"),
            Some("")
        );
        assert_eq!(p.require("nope").unwrap_err().kind(), "invalid");
    }

    fn router() -> Router {
        Router::new()
            .get("/items/{id}", |_, p| {
                Ok(Response::text(200, p.require("id")?.to_owned()))
            })
            .delete("/items/{id}", |_, _| Err(Error::Conflict("in use".into())))
    }

    #[test]
    fn dispatches_and_answers_404_405_and_errors() {
        let r = router().handle(Request::new(Method::Get, "/items/7"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.into_body_bytes(10).unwrap(), b"7");

        assert_eq!(
            router()
                .handle(Request::new(Method::Get, "/nothing"))
                .status(),
            404
        );

        let r = router().handle(Request::new(Method::Put, "/items/7"));
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers().get("allow"), Some("GET, DELETE"));

        assert_eq!(
            router()
                .handle(Request::new(Method::Delete, "/items/7"))
                .status(),
            409
        );
    }
}
