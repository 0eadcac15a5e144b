//! Completes the OpenAPI document utoipa generates from the handlers: every operation lists the
//! error responses the API can give, each an RFC 9457 problem document
//! (`application/problem+json`, the shared `Problem` schema). Error responses a handler declares
//! itself keep their description and get the problem content type.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{OpenApi, Ref, RefOr};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The errors any operation may answer with, and when.
const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "The request is malformed or a value is invalid (`detail` names the field).",
    ),
    ("401", "No valid API token was sent."),
    ("403", "The token may not do this."),
    ("404", "The resource (or route) does not exist."),
    ("405", "The method is not allowed on this path."),
    ("408", "The request took too long."),
    ("409", "The request conflicts with the current state."),
    ("413", "The body is too large."),
    (
        "415",
        "The body is not JSON (`Content-Type: application/json`).",
    ),
    ("429", "Too many failed attempts; wait before trying again."),
    (
        "500",
        "An unexpected error; the cause is in the core's log.",
    ),
    ("503", "The database cannot be reached; try again shortly."),
];

/// Adds the problem responses to every operation of `doc`.
pub fn add_problem_responses(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            complete(operation);
        }
    }
}

fn problem_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

fn complete(operation: &mut Operation) {
    for (status, description) in ERRORS {
        match operation.responses.responses.get_mut(*status) {
            Some(RefOr::T(declared)) => as_problem(declared),
            Some(RefOr::Ref(_)) => {}
            None => {
                let response = ResponseBuilder::new()
                    .description(*description)
                    .content(PROBLEM_JSON, problem_content())
                    .build();
                operation
                    .responses
                    .responses
                    .insert((*status).to_owned(), RefOr::T(response));
            }
        }
    }
}

/// A declared error response answers `application/problem+json` with the `Problem` schema.
fn as_problem(response: &mut Response) {
    response.content.shift_remove("application/json");
    response
        .content
        .insert(PROBLEM_JSON.to_owned(), RefOr::T(problem_content()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_lists_problem_responses() {
        let (_, mut doc) = super::super::router_with_openapi();
        add_problem_responses(&mut doc);
        let json = serde_json::to_value(&doc).expect("json");
        let paths = json["paths"].as_object().expect("paths");
        assert!(paths.len() > 20);
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("item") {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                for (status, _) in ERRORS {
                    let response = &operation["responses"][*status];
                    assert_eq!(
                        response["content"][PROBLEM_JSON]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                    assert!(
                        response["content"].get("application/json").is_none(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
