//! The mock LLM providers (tests/ai/mock_providers.py, a real HTTP server
//! speaking each provider's wire format) as a child process of a test.

use super::{client, free_port, wait_until};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running mock provider, stopped when dropped.
pub(crate) struct Mock {
    pub(crate) port: u16,
    child: Child,
}

impl Mock {
    /// Starts the mock, accepting only `keys` (comma-separated).
    pub(crate) async fn start(keys: &str) -> Mock {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ai/mock_providers.py");
        let child = Command::new("python3")
            .args([script, "--port", &port.to_string()])
            .env("MOCK_KEYS", keys)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the mock providers");
        wait_until("mock providers listen", Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        Mock { port, child }
    }

    /// Every request the mock received, oldest first.
    pub(crate) async fn requests(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/_mock/requests", self.port);
        client().get(url).send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OpenAI chat completion answering "hi" as `model`, with this usage:
/// what the tests' one-line providers send.
pub(crate) fn chat_completion(model: &str, prompt_tokens: u64, completion_tokens: u64) -> String {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}
    })
    .to_string()
}
