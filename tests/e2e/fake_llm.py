"""fake_llm: an OpenAI-compatible chat-completions server of our own, for
the tests of a bot's language model (tests/e2e/test_understand_llm.py).

Serves POST /v1/chat/completions on 127.0.0.1 (a free port) and answers
with a call of the request's one tool whose arguments come from a table:
the first entry whose key is in the user message's text (the key "" is
the default; nothing matches: empty arguments). An entry may instead
make the answer misbehave:

    {"slow": True}       hold the answer until release() (or 10 s): the
                          client's timeout ends the wait first
    {"garbage": True}    200 with a body that is not JSON
    {"status": 500}      that status with an OpenAI-style error body
    {"content": "..."}   no tool call: the text as the message's content

Every answer says usage.total_tokens = self.tokens (10 unless set).
Every request is recorded (path, headers, the JSON body): requests().

Standard library only.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self):
        self.table = {}
        self.tokens = 10
        self._lock = threading.Lock()
        self._requests = []
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = "http://127.0.0.1:%d/v1" % self.port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # --- what the tests see ----------------------------------------------------

    def requests(self):
        with self._lock:
            return list(self._requests)

    def count(self):
        with self._lock:
            return len(self._requests)

    def answer(self, key, arguments):
        """The tool call's arguments (a dict, or a string sent as it is)
        for a user message containing key."""
        with self._lock:
            self.table[key] = {"arguments": arguments}

    def misbehave(self, key, how):
        with self._lock:
            self.table[key] = dict(how)

    def release(self):
        """Lets every held (slow) answer go; later ones are held again."""
        with self._lock:
            held, self._release = self._release, threading.Event()
        held.set()

    def stop(self):
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- serving ----------------------------------------------------------------

    def _entry_for(self, text):
        with self._lock:
            for key in sorted(self.table, key=len, reverse=True):
                if key and key in text:
                    return self.table[key]
            return self.table.get("", {"arguments": {}})

    def _handle(self, req):
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self._requests.append({"path": req.path, "headers": {k.lower(): v for k, v in req.headers.items()},
                                   "body": body})
        if req.path != "/v1/chat/completions" or not isinstance(body, dict):
            return self._send(req, 404, b'{"error": {"message": "no such route"}}')
        user = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
        entry = self._entry_for(user[-1] if user else "")
        if entry.get("slow"):
            with self._lock:
                held = self._release
            held.wait(10)
            return self._send(req, 200, json.dumps(self._completion(body, {})).encode())
        if entry.get("garbage"):
            return self._send(req, 200, b"<html>surprise</html>")
        if entry.get("status"):
            return self._send(req, entry["status"], b'{"error": {"message": "the fake was told to fail"}}')
        return self._send(req, 200, json.dumps(self._completion(body, entry.get("arguments", {}),
                                                                entry.get("content"))).encode())

    def _completion(self, body, arguments, content=None):
        message = {"role": "assistant", "content": content}
        if content is None:
            tools = body.get("tools") or [{"function": {"name": "understood"}}]
            args = arguments if isinstance(arguments, str) else json.dumps(arguments)
            message["tool_calls"] = [{"id": "call_1", "type": "function",
                                      "function": {"name": tools[0]["function"]["name"], "arguments": args}}]
        return {"id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": self.tokens - 1, "completion_tokens": 1, "total_tokens": self.tokens}}

    def _send(self, req, status, data):
        try:
            req.send_response(status)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout)
