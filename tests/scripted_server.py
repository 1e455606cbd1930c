"""A real OpenAI-compatible HTTP server that answers from a script, for tests of the agent.

Why a real server and not a mocked client: the agent talks to vLLM/Ollama/llama.cpp through the
``openai`` package, and what reaches our parser is what that client makes of the HTTP response
(``response.choices[0].message.model_dump()``), including fields outside the OpenAI spec such as
vLLM's ``reasoning_content`` and arguments sent as an object. Serving vLLM-shaped JSON over HTTP on
127.0.0.1 (port 0) tests exactly that path, with no network and no model (docs/design.md §7).

Script items, answered one per ``POST /v1/chat/completions`` in order:

* a dict: the assistant ``message`` (wrapped into a full vLLM-shaped ``chat.completion``);
* ``{"message": {...}, "finish_reason": "length"}``: the same with an explicit finish reason;
* ``{"http_status": 503, "body": {...}}``: an error response;
* ``{"delay": seconds, "message": {...}}`` (or with ``http_status``): the same after a pause;
* ``{"raw": "text", "http_status": 200}``: that text as the body, as a broken proxy or server sends it
  (not JSON, or JSON cut short);
* ``{"drop": True}``: the connection is closed without an answer (a server restarting).

When the script is exhausted the server answers 500 with a body saying so. ``"stream": true`` is
answered 400 without using an item: the agent must never stream tool-call turns (vLLM's hermes
parser breaks on streamed Qwen3-VL output). The builders at the bottom make assistant messages the
way Qwen3-VL behind vLLM really returns them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = "Qwen/Qwen3-VL-8B-Instruct"

__all__ = [
    "MODEL_ID",
    "ScriptedServer",
    "content_tool_call",
    "fenced_json_call",
    "text_message",
    "tool_calls_message",
]


def _error_body(message: str, status: int, kind: str) -> dict[str, Any]:
    """vLLM's error shape."""
    return {"object": "error", "message": message, "type": kind, "param": None, "code": status}


class ScriptedServer:
    """``with ScriptedServer(script) as srv: OpenAI(base_url=srv.url, api_key="x")``.

    ``srv.requests`` holds every received POST body (parsed JSON; ``None`` when it was not JSON),
    ``srv.served`` how many script items were used.
    """

    def __init__(self, script: Iterable[dict[str, Any] | Callable[[dict], dict]], model: str = MODEL_ID) -> None:
        self.script: list[dict[str, Any]] = list(script)
        self.model = model
        self.requests: list[Any] = []
        self.served = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ScriptedServer:
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"scripted": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # a short poll interval: shutdown() waits for it, and tests start many servers
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="scripted-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("ScriptedServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL for the ``openai`` client, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- answers --------------------------------------------------------------------------------

    def _next_item(self) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            index = self.served
            if index >= len(self.script):
                return index, None
            self.served += 1
            return index, self.script[index]

    def completion(self, message: dict[str, Any], request: dict[str, Any], finish_reason: str | None = None
                   ) -> dict[str, Any]:
        """Wrap an assistant message into a vLLM-shaped ``chat.completion``."""
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": [],
            "reasoning_content": None,
        }
        msg.update(message)
        if finish_reason is None:
            finish_reason = "tool_calls" if msg.get("tool_calls") else "stop"
        prompt_tokens = max(1, len(json.dumps(request.get("messages", []))) // 4)
        completion_tokens = max(1, len(json.dumps(message)) // 4)
        return {
            "id": "chatcmpl-" + hashlib.sha256(f"{self.served}:{json.dumps(message)}".encode()).hexdigest()[:32],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": msg,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                    "stop_reason": None,
                }
            ],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "completion_tokens": completion_tokens,
                "prompt_tokens_details": None,
            },
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "vllm",
                    "root": self.model,
                    "parent": None,
                    "max_model_len": 32768,
                    "permission": [],
                }
            ],
        }


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that gave up (its timeout passed) closes the socket we answer on: that is the
        scripted fault working, not a server error worth a traceback on stderr."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    scripted: ScriptedServer  # set on the per-server subclass
    server_version = "ScriptedServer/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, self.scripted.models())
        else:
            self._send(404, _error_body(f"no route GET {self.path}", 404, "NotFoundError"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        srv = self.scripted
        with srv._lock:
            srv.requests.append(body)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, _error_body(f"no route POST {self.path}", 404, "NotFoundError"))
            return
        if not isinstance(body, dict):
            self._send(400, _error_body("request body is not a JSON object", 400, "BadRequestError"))
            return
        if body.get("stream"):
            msg = "ScriptedServer: stream=true is not allowed; tool-call turns must not be streamed"
            self._send(400, _error_body(msg, 400, "BadRequestError"))
            return
        index, item = srv._next_item()
        if callable(item):  # a scripted turn that reads the request (e.g. to reuse a returned mask_id)
            item = item(body)
        if item is None:
            msg = (f"ScriptedServer: script exhausted: request #{index + 1} but only "
                   f"{len(srv.script)} response(s) were scripted")
            self._send(500, _error_body(msg, 500, "InternalServerError"))
            return
        if "delay" in item:
            time.sleep(float(item["delay"]))
        if item.get("drop"):
            self.close_connection = True
            self.connection.shutdown(2)  # socket.SHUT_RDWR: the client sees the connection go
            return
        if "raw" in item:
            data = str(item["raw"]).encode("utf-8")
            self.send_response(int(item.get("http_status", 200)))
            self.send_header("Content-Type", item.get("content_type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if "http_status" in item:
            status = int(item["http_status"])
            self._send(status, item.get("body") or _error_body(f"scripted HTTP {status}", status, "APIError"))
            return
        if "message" in item and isinstance(item["message"], dict):
            self._send(200, srv.completion(item["message"], body, item.get("finish_reason")))
        else:
            self._send(200, srv.completion(item, body))


# ---------------------------------------------------------------------------------------------
# Builders of realistic Qwen3-VL / vLLM assistant messages


def _call_id(name: str, args: object) -> str:
    """A vLLM-like id, deterministic so recorded traces compare equal."""
    return "call_" + hashlib.sha256(json.dumps([name, args], sort_keys=True).encode()).hexdigest()[:24]


def tool_calls_message(name: str, args: dict[str, Any], reasoning: str | None = None, *,
                       raw_arguments: str | dict[str, Any] | None = None,
                       reasoning_field: str = "reasoning_content") -> dict[str, Any]:
    """Standard ``tool_calls`` (what vLLM's hermes parser returns when it succeeds).

    ``raw_arguments`` replaces the JSON string of ``args`` (a malformed string, or an object for
    servers that send arguments unencoded).
    """
    arguments: str | dict[str, Any] = json.dumps(args, ensure_ascii=False) if raw_arguments is None else raw_arguments
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": _call_id(name, args), "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }
    if reasoning is not None:
        msg[reasoning_field] = reasoning
    return msg


def content_tool_call(name: str, args: dict[str, Any], missing_brace: bool = False, think: str | None = None, *,
                      missing_close_tag: bool = False, prefix: str = "") -> dict[str, Any]:
    """Hermes markup left in ``content`` (the server's parser failed): ``tool_calls`` is empty."""
    payload = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    if missing_brace:
        payload = payload[:-1]
    content = ""
    if think is not None:
        content += f"<think>\n{think}\n</think>\n\n"
    content += prefix + "<tool_call>\n" + payload + "\n"
    if not missing_close_tag:
        content += "</tool_call>"
    return {"role": "assistant", "content": content, "tool_calls": []}


def fenced_json_call(name: str, args: dict[str, Any], *, key: str = "arguments",
                     preamble: str = "I will segment the front-most object.") -> dict[str, Any]:
    """A call written as a Markdown ```json fence in the content."""
    payload = json.dumps({"name": name, key: args}, indent=2, ensure_ascii=False)
    return {"role": "assistant", "content": f"{preamble}\n```json\n{payload}\n```", "tool_calls": []}


def text_message(text: str) -> dict[str, Any]:
    """A plain answer with no tool call."""
    return {"role": "assistant", "content": text, "tool_calls": []}
