#!/usr/bin/python3
"""agent_tool.py - a code tool for an AI agent: register hyperlight.tool_schema() with the
model, and run the tool calls it makes in a sandbox (docs/python.md, "Running code for an AI
agent").

    PYTHONPATH=build/python/lib python/examples/agent_tool.py
"""

import json

import hyperlight

# One interpreter for the whole conversation: warm sandboxes, each restored after a call.
# persistent=True would keep variables from call to call, like a notebook.
interpreter = hyperlight.Interpreter("python", pool_size=2, timeout=1.0, max_output=64 << 10)
TOOL = interpreter.tool_description()


def handle_tool_call(call: dict) -> dict:
    """A model's tool call, in either common shape, to the message that answers it:
    {"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}} (OpenAI) or
    {"id", "type": "tool_use", "name", "input": {...}} (Anthropic)."""
    if call.get("type") == "tool_use":
        name, args = call["name"], call["input"]
    else:
        name, args = call["function"]["name"], json.loads(call["function"]["arguments"])
    if name != TOOL["name"] or not isinstance(args.get("code"), str):
        content = {"error": {"kind": "bad_call", "message": f"unknown tool {name!r} or no code string"}}
    else:
        try:
            content = interpreter.run(args["code"]).as_dict()
        except ValueError as e:  # code longer than max_code
            content = {"error": {"kind": "bad_call", "message": str(e)}}
    return {"tool_call_id": call.get("id"), "content": json.dumps(content)}


def main() -> None:
    print("register:", json.dumps(TOOL)[:100], "...")
    calls = [  # what a model sends back
        {"id": "call_1", "type": "function",
         "function": {"name": "run_python", "arguments": json.dumps({"code": "sum(i * i for i in range(10))"})}},
        {"id": "toolu_2", "type": "tool_use", "name": "run_python",
         "input": {"code": "import json\n"
                            "primes = [p for p in range(2, 20) if all(p % d for d in range(2, p))]\n"
                            "print(json.dumps({'primes': primes}))"}},
        {"id": "call_3", "type": "function",
         "function": {"name": "run_python", "arguments": json.dumps({"code": "1 / 0"})}},
        {"id": "call_4", "type": "function",
         "function": {"name": "run_python", "arguments": json.dumps({"code": "while True:\n    pass"})}},
    ]
    answers = [handle_tool_call(c) for c in calls]
    for a in answers:
        print(a["tool_call_id"], a["content"][:160])
    results = [json.loads(a["content"]) for a in answers]
    assert results[0]["value"] == 285
    assert json.loads(results[1]["stdout"]) == {"primes": [2, 3, 5, 7, 11, 13, 17, 19]}
    assert results[2]["error"]["type"] == "ZeroDivisionError"
    assert results[3]["error"]["kind"] == "timeout"
    interpreter.close()
    print("ok")


if __name__ == "__main__":
    main()
