"""Talking to the vision-language model over any OpenAI-compatible endpoint, and serving recorded
answers back for replay.

Requests are built and recorded with images as ``artifact://<sha256>`` references; only the copy
sent over the wire carries ``data:image/png;base64`` URLs, made at the last moment from the artifact
files. Only the latest few images stay in the history sent (older ones become a short text
placeholder) so long peels stay inside the context and fast. Tool-call turns are never streamed (the
hermes parser breaks on streamed Qwen3-VL output). Connection errors, timeouts, 429 and 5xx are
retried with exponential backoff inside a bounded total wait (three times the per-call timeout), so
a server that accepts a request and never answers costs minutes, not half an hour; anything else is
an error for the run, worded for the user (what the server answered, not a parser's exception).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from .artifacts import PREFIX, ArtifactStore
from .trace import request_hash

DEFAULT_URL = "http://127.0.0.1:8000/v1"
DEFAULT_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
DEFAULT_TIMEOUT = 120.0  # seconds one model call may take (--timeout)
TOTAL_WAIT = 3  # one model turn, retries included, waits at most this many timeouts
# every request passes this gate: a no-op, or (in a batch) the shared cap on requests in flight
REQUEST_GATE: Callable[[], AbstractContextManager] = contextlib.nullcontext


class EndpointError(RuntimeError):
    """The model endpoint could not be reached or kept failing."""


@dataclass
class Sampling:
    temperature: float = 0.2
    top_p: float = 0.8
    max_tokens: int = 2048
    seed: int = 0

    def as_request(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "seed": self.seed}


@dataclass
class Completion:
    message: dict  # choices[0].message as a plain dict (content, tool_calls, reasoning_content, ...)
    raw: dict  # the whole response as received
    latency_s: float
    attempts: int = 1


class Model(Protocol):
    name: str
    endpoint: str

    def complete(self, request: dict) -> Completion: ...


def window_images(messages: list[dict], keep: int) -> list[dict]:
    """Copy of ``messages`` where only the latest ``keep`` images remain; older ones become text."""
    out = copy.deepcopy(messages)
    seen = 0
    for msg in reversed(out):
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for i in range(len(content) - 1, -1, -1):
            part = content[i]
            if part.get("type") == "image_url":
                seen += 1
                if seen > keep:
                    content[i] = {"type": "text", "text": "[earlier image omitted]"}
    return out


def with_data_urls(messages: list[dict], store: ArtifactStore) -> list[dict]:
    """Copy of ``messages`` with every ``artifact://`` image replaced by a base64 data URL."""
    out = copy.deepcopy(messages)
    for msg in out:
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            url = part.get("image_url", {}).get("url", "") if part.get("type") == "image_url" else ""
            if url.startswith(PREFIX):
                data = base64.b64encode(store.bytes(url)).decode()
                part["image_url"]["url"] = f"data:image/png;base64,{data}"
    return out


def probe(base_url: str, api_key: str | None = None, timeout: float = 2.0) -> str | None:
    """None when ``GET {base_url}/models`` answers in time, else why not (one line)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = httpx.get(base_url.rstrip("/") + "/models", timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        return f"{base_url} did not answer ({type(exc).__name__})"
    if r.status_code != 200:
        return f"{base_url}/models answered HTTP {r.status_code}"
    return None


@dataclass
class OpenAIModel:
    endpoint: str
    name: str
    store: ArtifactStore
    api_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 4
    backoff: float = 1.0
    _client: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import openai

        self._client = openai.OpenAI(base_url=self.endpoint, api_key=self.api_key or "EMPTY",
                                     timeout=self.timeout, max_retries=0)

    def complete(self, request: dict) -> Completion:
        import openai

        wire = dict(request, messages=with_data_urls(request["messages"], self.store), stream=False)
        retryable = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                     openai.InternalServerError)
        first = time.perf_counter()
        deadline = first + TOTAL_WAIT * self.timeout
        for attempt in range(1, self.retries + 2):
            start = time.perf_counter()
            try:
                with REQUEST_GATE():
                    answer = self._client.chat.completions.with_raw_response.create(
                        **wire, timeout=max(0.1, min(self.timeout, deadline - start)))
            except retryable as exc:
                pause = self.backoff * 2 ** (attempt - 1)
                if attempt > self.retries or time.perf_counter() + pause >= deadline:
                    raise EndpointError(self._gave_up(exc, attempt, time.perf_counter() - first)) from None
                time.sleep(pause)
                continue
            except openai.APIStatusError as exc:
                raise EndpointError(f"the model endpoint {self.endpoint} answered HTTP {exc.status_code}: "
                                    f"{_short(exc.message)}") from None
            message, raw = self._message(answer.http_response.text)
            return Completion(message, raw, time.perf_counter() - start, attempt)
        raise AssertionError("unreachable")

    def _gave_up(self, exc: Exception, attempts: int, waited: float) -> str:
        import openai

        what = {openai.APITimeoutError: f"did not answer within --timeout {self.timeout:g} s",
                openai.APIConnectionError: "could not be reached",
                openai.RateLimitError: "kept answering HTTP 429 (rate limited)",
                openai.InternalServerError: f"kept failing (HTTP {getattr(exc, 'status_code', '5xx')})"}
        reason = next((text for kind, text in what.items() if isinstance(exc, kind)), type(exc).__name__)
        return f"the model endpoint {self.endpoint} {reason}: gave up after {attempts} attempts in {waited:.0f} s"

    def _message(self, body: str) -> tuple[dict, dict]:
        """choices[0].message of a response body, or an EndpointError that quotes what came instead."""
        try:
            raw = json.loads(body)
        except ValueError:
            raise EndpointError(f"the model endpoint {self.endpoint} answered with something that is not JSON: "
                                f"{_short(body, 80)!r}") from None
        choices = raw.get("choices") if isinstance(raw, dict) else None
        message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(
            choices[0], dict) else None
        if not isinstance(message, dict):
            raise EndpointError(f"the model endpoint {self.endpoint} answered JSON without choices[0].message: "
                                f"{_short(body, 80)!r}")
        return message, raw


class RecordingExhausted(RuntimeError):
    pass


@dataclass
class ReplayModel:
    """Serves the responses of a recorded trace in order, noting where requests stop matching."""

    responses: list[dict]  # llm_response payloads, in order
    hashes: list[str]  # request hashes recorded with them
    name: str = "replay"
    endpoint: str = "replay"
    served: int = 0
    divergence: dict | None = None

    def complete(self, request: dict) -> Completion:
        if self.served >= len(self.responses):
            raise RecordingExhausted(f"the recording has only {len(self.responses)} model responses")
        i = self.served
        got = request_hash(request)
        if self.divergence is None and got != self.hashes[i]:
            self.divergence = {"model_turn": i, "recorded_hash": self.hashes[i], "new_hash": got}
        self.served += 1
        rec = self.responses[i]
        return Completion(rec["message"], rec.get("raw", {}), 0.0)


def _short(text: object, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
