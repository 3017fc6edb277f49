"""Runs INSIDE the sandbox, as a script of its own (``python -I runner.py JOB``):
loads the DSPy program in ``JOB/model`` with ``mlflow.dspy`` once, then runs
it for each request the server sends, until its input closes.

It imports only MLflow and DSPy (never mlflow_hokusai). Protocol: one JSON
object per line, on the process's original stdin/stdout, which are moved to
private descriptors first so that a program's ``print`` cannot interleave
with answers. Messages in:

- ``{"op": "run", "inputs": {...}}``: run the program once;
- ``{"op": "lm", "response": {...}}`` / ``{"op": "lm", "error": "..."}``: the
  server's answer to this process's ``lm`` request.

Messages out: ``{"op": "ready", "signatures", "input_fields", "description"}``
once loaded (or ``{"op": "failed", "error"}``); ``{"op": "result", "outputs",
"trace"}`` or ``{"op": "result", "error"}`` per run; and, when the server
configured its LM (``--server-lm``), ``{"op": "lm", "request": {...}}`` per LM
call: the server calls the model, so no key ever enters this process.
"""

import inspect
import json
import os
import sys
import traceback
from typing import Any

MAX_TEXT = 2000


def _channels():
    """(reader, writer) on private copies of stdin/stdout; fds 0 and 1 then
    point at /dev/null and stderr."""
    reader = os.fdopen(os.dup(0), "r", encoding="utf-8")
    writer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    return reader, writer


class Channel:
    def __init__(self):
        self.reader, self.writer = _channels()

    def send(self, message: dict) -> None:
        self.writer.write(json.dumps(message, default=str) + "\n")
        self.writer.flush()

    def receive(self) -> dict | None:
        line = self.reader.readline()
        return json.loads(line) if line else None


def _error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" (at {os.path.basename(last[0].filename)}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}"[:MAX_TEXT] + where


def _field(name, info) -> dict:
    extra = getattr(info, "json_schema_extra", None) or {}
    annotation = getattr(info, "annotation", None)
    kind = getattr(annotation, "__name__", None) or str(annotation)
    return {"name": name, "type": kind, "description": extra.get("desc")}


def describe(program) -> dict:
    """Signatures of each predictor, and the inputs the program's call takes:
    its ``forward`` parameters when it names them, else its first predictor's."""
    signatures: list[dict[str, Any]] = []
    for _, predictor in program.named_predictors():
        signature = predictor.signature
        signatures.append({
            "input_fields": [_field(n, i) for n, i in signature.input_fields.items()],
            "output_fields": [_field(n, i) for n, i in signature.output_fields.items()],
            "instructions": getattr(signature, "instructions", None)})
    parameters = inspect.signature(program.forward).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in parameters) or not parameters:
        required = [f["name"] for f in signatures[0]["input_fields"]] if signatures else []
    else:
        required = [p.name for p in parameters
                    if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                            p.KEYWORD_ONLY)]
    # A program class of its own says what it does; DSPy's own modules (a bare
    # Predict) describe DSPy, so their first signature's instructions do.
    own = type(program).__module__.split(".")[0] != "dspy"
    description = (inspect.getdoc(type(program)) if own else None) or \
        (signatures[0]["instructions"] if signatures else None)
    return {"signatures": signatures, "input_fields": required, "description": description}


def _plain(value):
    """A JSON-ready copy: DSPy predictions and pydantic values as dicts."""
    if hasattr(value, "toDict"):
        value = value.toDict()
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return json.loads(json.dumps(value, default=str))


def _trace(entries) -> list:
    trace = []
    for predictor, inputs, outputs in entries or ():
        trace.append({"predictor": type(predictor).__name__,
                      "signature": getattr(getattr(predictor, "signature", None),
                                           "__name__", None),
                      "inputs": _plain(dict(inputs)), "outputs": _plain(outputs)})
    return trace


def server_lm(channel: Channel, model: str):
    """A DSPy LM whose calls go to the server over the channel."""
    import dspy
    from litellm import ModelResponse

    class ServerLM(dspy.BaseLM):
        def forward(self, prompt=None, messages=None, **kwargs):
            messages = messages or [{"role": "user", "content": prompt}]
            channel.send({"op": "lm", "request": {"messages": messages, **kwargs}})
            answer = channel.receive() or {"error": "the server closed the channel"}
            if answer.get("error"):
                raise RuntimeError(f"language model call failed: {answer['error']}")
            return ModelResponse(**answer["response"])

    return ServerLM(model=model)


def run(program, channel: Channel, inputs: dict) -> dict:
    import dspy

    try:
        with dspy.context(trace=[]):
            prediction = program(**inputs)
            trace = _trace(dspy.settings.trace)
        return {"op": "result", "outputs": _plain(prediction), "trace": trace}
    except MemoryError:
        return {"op": "result", "error": "the program exceeded its memory limit"}
    except BaseException as exc:  # noqa: BLE001 - program code may raise anything, SystemExit included
        return {"op": "result", "error": _error(exc)}


def main(job: str, lm_model: str | None) -> int:
    channel = Channel()
    # Programs logged with mlflow.dspy are pickles: loading one runs its code,
    # which is what this sandboxed process is for.
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    # litellm (imported by dspy) would otherwise fetch its price list from GitHub.
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    try:
        import dspy
        import mlflow.dspy

        program = mlflow.dspy.load_model(os.path.join(job, "model"))
        if lm_model:
            dspy.settings.configure(lm=server_lm(channel, lm_model))
        channel.send({"op": "ready", **describe(program)})
    except BaseException as exc:  # noqa: BLE001 - the server hears why the program did not load
        channel.send({"op": "failed", "error": _error(exc)})
        return 1
    while True:
        message = channel.receive()
        if message is None:
            return 0
        if message.get("op") == "run":
            channel.send(run(program, channel, message.get("inputs") or {}))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    sys.exit(main(arguments[0], arguments[2] if arguments[1:2] == ["--server-lm"] else None))
