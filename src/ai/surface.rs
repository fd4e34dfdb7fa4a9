//! The rest of OpenAI's surface, passed through to the providers that serve
//! it: `/v1/completions` (streamed too), `/v1/images/generations`,
//! `/v1/audio/speech`, `/v1/audio/transcriptions` (a multipart form),
//! `/v1/moderations` and `/v1/rerank` (Cohere's, Jina's and Voyage's shape,
//! which vLLM and others serve too).
//!
//! Only providers of the OpenAI format (OpenAI, Azure OpenAI and the
//! compatible vendors) get these calls: the body goes through with the model
//! replaced, and the answer comes back as the provider sent it, whatever its
//! content type (audio for speech). Anthropic and Gemini providers have no
//! such endpoints: a target of theirs is skipped, and a call with no other
//! target is 400 `unsupported_for_provider` naming the provider. A provider
//! that answers 404 (it lacks the endpoint) moves the call on to the next
//! target, as for chat.
//!
//! Usage is read from the answer where the provider reports tokens
//! (`usage.prompt_tokens`/`completion_tokens`, `input_tokens`/`output_tokens`,
//! or `total_tokens`) and charged like chat; answers priced per image,
//! per minute of audio or per search unit report no tokens, so their cost
//! shows only through `ai.prices` overrides by token or not at all (they are
//! counted as unpriced). Batches and files are not served: they hold state
//! at the provider that a gateway in front of several providers cannot
//! route.

use super::access::Allowed;
use super::dispatch::{CallRequest, Endpoint, Failure};
use super::exchange::AiExchange;
use super::handler::{call_headers, charge_failed, finish_call, read_answer, read_body, start_call};
use super::inbound::Api;
use super::registry::AiRegistry;
use super::{stream, Usage};
use crate::error::GatewayError;
use crate::serve::respond::respond;
use bytes::Bytes;
use http::{header, HeaderValue};
use pingora_proxy::Session;
use serde_json::{json, Value};

/// One endpoint of the rest of the surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    Completions,
    Images,
    Speech,
    Transcriptions,
    Moderations,
    Rerank,
}

impl Surface {
    /// The endpoint's path below `/v1`.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Surface::Completions => "/completions",
            Surface::Images => "/images/generations",
            Surface::Speech => "/audio/speech",
            Surface::Transcriptions => "/audio/transcriptions",
            Surface::Moderations => "/moderations",
            Surface::Rerank => "/rerank",
        }
    }

    /// The endpoint for a path below `/v1/`.
    pub(crate) fn parse(rest: &str) -> Option<Surface> {
        [
            Surface::Completions,
            Surface::Images,
            Surface::Speech,
            Surface::Transcriptions,
            Surface::Moderations,
            Surface::Rerank,
        ]
        .into_iter()
        .find(|s| s.path().strip_prefix('/') == Some(rest))
    }
}

/// Most fields in a form: OpenAI's transcription form has about a dozen.
/// `reqwest` chains one stream per field, nested as deep as there are
/// fields, so thousands of tiny fields would overflow the stack when the
/// form is sent, and kill the process.
const MAX_FIELDS: usize = 64;

/// A multipart form (`/v1/audio/transcriptions`), parsed with `multer` (the
/// multipart parser axum uses) and sent on with `reqwest`'s form builder;
/// at most [`MAX_FIELDS`] fields.
#[derive(Debug, Default)]
pub(crate) struct Form {
    fields: Vec<Field>,
}

#[derive(Debug)]
struct Field {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Bytes,
}

impl Form {
    /// Parses a `multipart/form-data` body of `content_type`.
    pub(crate) async fn parse(content_type: &str, body: Bytes) -> Result<Form, String> {
        let boundary = multer::parse_boundary(content_type).map_err(|e| format!("not a multipart form: {e}"))?;
        let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let mut fields = Vec::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| format!("bad multipart form: {e}"))?
        {
            if fields.len() == MAX_FIELDS {
                return Err(format!("the form has more than {MAX_FIELDS} fields"));
            }
            let name = field.name().unwrap_or_default().to_string();
            let filename = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(|m| m.to_string());
            let data = field.bytes().await.map_err(|e| format!("bad multipart form: {e}"))?;
            fields.push(Field {
                name,
                filename,
                content_type,
                data,
            });
        }
        Ok(Form { fields })
    }

    /// The `model` field.
    pub(crate) fn model(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == "model" && f.filename.is_none())
            .and_then(|f| std::str::from_utf8(&f.data).ok())
    }

    /// The form for a provider, with `model` replaced (or left out, for
    /// Azure, whose deployment is in the URL).
    pub(crate) fn to_reqwest(&self, model: Option<&str>) -> reqwest::multipart::Form {
        let mut form = reqwest::multipart::Form::new();
        for f in &self.fields {
            if f.name == "model" && f.filename.is_none() {
                if let Some(m) = model {
                    form = form.text("model", m.to_string());
                }
                continue;
            }
            let mut part = reqwest::multipart::Part::stream(f.data.clone());
            if let Some(name) = &f.filename {
                part = part.file_name(name.clone());
            }
            if let Some(ct) = &f.content_type {
                part = match part.mime_str(ct) {
                    Ok(p) => p,
                    Err(_) => reqwest::multipart::Part::stream(f.data.clone()),
                };
            }
            form = form.part(f.name.clone(), part);
        }
        form
    }
}

/// The tokens an answer reports, in whichever of the usual shapes.
pub(crate) fn usage_of(body: &[u8]) -> Usage {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Usage::default();
    };
    let Some(u) = v.get("usage").filter(|u| u.is_object()) else {
        return Usage::default();
    };
    let n = |k: &str| super::wire::token_count(u.get(k));
    if u.get("prompt_tokens").is_some() {
        return Usage::from_openai(u).unwrap_or_default();
    }
    if u.get("input_tokens").is_some() || u.get("output_tokens").is_some() {
        return Usage {
            prompt_tokens: n("input_tokens"),
            completion_tokens: n("output_tokens"),
            ..Usage::default()
        };
    }
    Usage {
        prompt_tokens: n("total_tokens"),
        ..Usage::default()
    }
}

fn failure(error: GatewayError, message: impl Into<String>) -> Failure {
    Failure::new(error, message)
}

/// Serves one call of the rest of the surface.
pub(crate) async fn serve(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    allowed: Allowed<'_>,
    surface: Surface,
) -> Result<(), Failure> {
    let content_type = session
        .req_header()
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = read_body(session, ctx, reg.max_body).await?;
    let (req, form) = if surface == Surface::Transcriptions {
        let form = Form::parse(&content_type, body)
            .await
            .map_err(|e| failure(GatewayError::BadRequest, e))?;
        let model = form
            .model()
            .ok_or_else(|| failure(GatewayError::BadRequest, "the form has no `model` field").at("model"))?;
        (json!({"model": model}), Some(form))
    } else {
        let v: Value = serde_json::from_slice(&body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| failure(GatewayError::BadRequest, "request body must be a JSON object"))?;
        (v, None)
    };
    let stream = surface == Surface::Completions && req.get("stream").and_then(Value::as_bool) == Some(true);
    let call = CallRequest {
        api: Api::Chat,
        original: &req,
        chat: &req,
        form: form.as_ref(),
    };
    let mut accepted = start_call(ctx, reg, allowed, Endpoint::Surface(surface), &call, stream).await?;
    if stream {
        stream::answer(session, ctx, reg, &call, accepted, None).await;
        return Ok(());
    }
    let answer_type = accepted
        .response
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    let answer = match read_answer(reg, &mut accepted).await {
        Ok(a) => a,
        Err(f) => {
            charge_failed(ctx, reg, &accepted.target, accepted.attempts, &req);
            return Err(f);
        }
    };
    let usage = usage_of(&answer);
    let usd = finish_call(ctx, reg, &accepted, usage, false);
    let mut headers = call_headers(&accepted, usd);
    headers.push((header::CONTENT_TYPE, answer_type));
    respond(session, ctx, 200, &headers, Bytes::from(answer))
        .await
        .map_err(|_| failure(GatewayError::Internal, "write failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_usage() {
        assert_eq!(Surface::parse("audio/speech"), Some(Surface::Speech));
        assert_eq!(Surface::parse("rerank"), Some(Surface::Rerank));
        assert_eq!(Surface::parse("audio"), None);
        let u = usage_of(br#"{"usage":{"prompt_tokens":3,"completion_tokens":2}}"#);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 2));
        let u = usage_of(br#"{"usage":{"input_tokens":7,"output_tokens":1,"type":"tokens"}}"#);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (7, 1));
        assert_eq!(usage_of(br#"{"usage":{"total_tokens":9}}"#).prompt_tokens, 9);
        assert_eq!(usage_of(b"RIFF....").total(), 0);
        // Whatever a provider claims, sums of its counts cannot overflow.
        for body in [
            br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":5}}"#.as_slice(),
            br#"{"usage":{"input_tokens":18446744073709551615,"output_tokens":18446744073709551615}}"#,
        ] {
            assert_eq!(
                usage_of(body).total(),
                usage_of(body).prompt_tokens + usage_of(body).completion_tokens
            );
            assert!(usage_of(body).total() <= 2 << 40);
        }
    }

    #[tokio::test]
    async fn forms_keep_their_fields_and_change_the_model() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\noai/whisper-1\r\n\
                    --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--b--\r\n";
        let form = Form::parse("multipart/form-data; boundary=b", Bytes::from(body))
            .await
            .unwrap();
        assert_eq!(form.model(), Some("oai/whisper-1"));
        assert_eq!(form.fields[1].filename.as_deref(), Some("a.wav"));
        assert_eq!(&form.fields[1].data[..], b"RIFF");
        assert!(Form::parse("application/json", Bytes::new()).await.is_err());
    }

    #[tokio::test]
    async fn a_form_of_many_tiny_fields_is_refused() {
        let part = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n";
        let body = format!("{}--b--\r\n", part.repeat(MAX_FIELDS + 1));
        let err = Form::parse("multipart/form-data; boundary=b", Bytes::from(body))
            .await
            .unwrap_err();
        assert!(err.contains("more than"), "{err}");
        let body = format!("{}--b--\r\n", part.repeat(MAX_FIELDS));
        assert!(Form::parse("multipart/form-data; boundary=b", Bytes::from(body))
            .await
            .is_ok());
    }
}
