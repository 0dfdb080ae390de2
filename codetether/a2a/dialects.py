"""The two A2A JSON dialects and the conversions between them (plain dicts, no SDK).

    v1.0  proto3 JSON (camelCase): enums ``TASK_STATE_WORKING`` / ``ROLE_USER``, parts are oneofs
          ``{text}|{raw}|{url}|{data}`` plus ``filename``/``mediaType``, stream events are
          wrapped ``{task}|{message}|{statusUpdate}|{artifactUpdate}``, push configs are flat.
    v0.3  JSON-RPC of the 0.3 spec: lowercase enums (``working``, ``user``), objects tagged by
          ``kind`` (task, message, status-update, artifact-update, text, file, data), files as
          ``{file:{bytes|uri, name, mimeType}}``, push configs nested under ``taskId``.

Every ``to_v1_*`` takes the v0.3 shape and every ``to_v03_*`` the v1.0 shape; both accept an
object that is already in the target shape where that is unambiguous (a part without ``kind`` is
v1.0, a state in capitals is v1.0), so a server can feed them whatever a lenient client sent.
The rules follow a2a-sdk's own ``a2a.compat.v0_3.conversions`` (the tests check we agree) with
one documented difference: ``final`` of a v0.3 status update is true for interrupted states
(input-required, auth-required) too, because our streams close there and a v0.3 reader waits
for ``final``.

Also here, since both the client and the server need them: the method names of each dialect
and request/response converters per operation (the error table is ``a2a/errors.py``).
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

# -- enums ---------------------------------------------------------------------------------

STATES_V03 = ("submitted", "working", "input-required", "completed", "canceled", "failed",
              "rejected", "auth-required", "unknown")
_STATE_TO_V1 = {s: "TASK_STATE_" + s.upper().replace("-", "_") for s in STATES_V03}
_STATE_TO_V1["unknown"] = "TASK_STATE_UNSPECIFIED"
_STATE_TO_V1["cancelled"] = "TASK_STATE_CANCELED"  # the Rust agent's spelling
_STATE_TO_V03 = {v: k for k, v in _STATE_TO_V1.items() if k != "cancelled"}

TERMINAL_STATES = frozenset({"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED",
                             "TASK_STATE_REJECTED"})
INTERRUPTED_STATES = frozenset({"TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"})


def state_to_v1(state: str | None) -> str:
    if not state:
        return "TASK_STATE_UNSPECIFIED"
    if state in _STATE_TO_V03:
        return state
    return _STATE_TO_V1.get(state.lower().replace("_", "-"), "TASK_STATE_UNSPECIFIED")


def state_to_v03(state: str | None) -> str:
    return _STATE_TO_V03.get(state_to_v1(state), "unknown")


def is_terminal(state: str | None) -> bool:
    return state_to_v1(state) in TERMINAL_STATES


def is_interrupted(state: str | None) -> bool:
    return state_to_v1(state) in INTERRUPTED_STATES


def role_to_v1(role: str | None) -> str:
    if role in ("ROLE_USER", "ROLE_AGENT", "ROLE_UNSPECIFIED"):
        return str(role)
    return {"user": "ROLE_USER", "agent": "ROLE_AGENT"}.get(role or "", "ROLE_UNSPECIFIED")


def role_to_v03(role: str | None) -> str:
    return "user" if role in ("ROLE_USER", "user") else "agent"


# -- helpers -------------------------------------------------------------------------------

def _put(out: Json, key: str, value: Any) -> None:
    """Set ``key`` unless the value is empty (proto3 JSON leaves defaults out)."""
    if value not in (None, "", [], {}):
        out[key] = value


def _copy(src: Json, out: Json, *keys: str) -> None:
    for key in keys:
        _put(out, key, src.get(key))


# -- parts, messages -----------------------------------------------------------------------

def to_v1_part(part: Json) -> Json:
    kind = part.get("kind")
    if kind is None:
        return dict(part)  # already v1.0
    out: Json = {}
    metadata = dict(part.get("metadata") or {})
    if kind == "text":
        out["text"] = part.get("text", "")
    elif kind == "data":
        data = part.get("data")
        if metadata.pop("data_part_compat", False) and isinstance(data, dict):
            out["data"] = data.get("value")  # a non-object value wrapped by to_v03_part
        else:
            out["data"] = data if data is not None else {}
    elif kind == "file":
        file = part.get("file") or {}
        if "bytes" in file:
            out["raw"] = file.get("bytes") or ""
        else:
            out["url"] = file.get("uri") or ""
        _put(out, "filename", file.get("name"))
        _put(out, "mediaType", file.get("mimeType"))
    else:
        raise ValueError(f"unknown part kind {kind!r}")
    _put(out, "metadata", metadata)
    return out


def to_v03_part(part: Json) -> Json:
    if "kind" in part:
        return dict(part)  # already v0.3
    metadata = dict(part.get("metadata") or {})
    if "text" in part:
        out: Json = {"kind": "text", "text": part["text"]}
    elif "data" in part:
        data = part["data"]
        if not isinstance(data, dict):
            data = {"value": data}
            metadata["data_part_compat"] = True
        out = {"kind": "data", "data": data}
    elif "raw" in part or "url" in part:
        file: Json = {"bytes": part["raw"]} if "raw" in part else {"uri": part["url"]}
        _put(file, "mimeType", part.get("mediaType"))
        _put(file, "name", part.get("filename"))
        out = {"kind": "file", "file": file}
    else:
        raise ValueError("part has none of text, raw, url, data")
    _put(out, "metadata", metadata)
    return out


def to_v1_message(msg: Json) -> Json:
    out: Json = {"messageId": msg.get("messageId", "")}
    _copy(msg, out, "contextId", "taskId")
    out["role"] = role_to_v1(msg.get("role"))
    out["parts"] = [to_v1_part(p) for p in msg.get("parts") or []]
    _copy(msg, out, "metadata", "extensions", "referenceTaskIds")
    return out


def to_v03_message(msg: Json) -> Json:
    out: Json = {"kind": "message", "messageId": msg.get("messageId", ""),
                 "role": role_to_v03(msg.get("role")),
                 "parts": [to_v03_part(p) for p in msg.get("parts") or []]}
    _copy(msg, out, "contextId", "taskId", "metadata", "extensions", "referenceTaskIds")
    return out


def text_message(text: str, message_id: str, role: str = "ROLE_USER",
                 context_id: str | None = None, task_id: str | None = None,
                 metadata: Json | None = None) -> Json:
    """A v1.0 message with one text part."""
    out: Json = {"messageId": message_id, "role": role_to_v1(role), "parts": [{"text": text}]}
    _put(out, "contextId", context_id)
    _put(out, "taskId", task_id)
    _put(out, "metadata", metadata)
    return out


def message_text(msg: Json | None) -> str:
    """The text parts of a message (either dialect), joined."""
    if not msg:
        return ""
    return "".join(p.get("text", "") for p in msg.get("parts") or []
                   if p.get("kind") in (None, "text") and "text" in p)


# -- tasks, artifacts, events --------------------------------------------------------------

def to_v1_status(status: Json) -> Json:
    out: Json = {"state": state_to_v1(status.get("state"))}
    if status.get("message"):
        out["message"] = to_v1_message(status["message"])
    _put(out, "timestamp", status.get("timestamp"))
    return out


def to_v03_status(status: Json) -> Json:
    out: Json = {"state": state_to_v03(status.get("state"))}
    if status.get("message"):
        out["message"] = to_v03_message(status["message"])
    _put(out, "timestamp", status.get("timestamp"))
    return out


def to_v1_artifact(art: Json) -> Json:
    out: Json = {"artifactId": art.get("artifactId", "")}
    _copy(art, out, "name", "description")
    out["parts"] = [to_v1_part(p) for p in art.get("parts") or []]
    _copy(art, out, "metadata", "extensions")
    return out


def to_v03_artifact(art: Json) -> Json:
    out: Json = {"artifactId": art.get("artifactId", "")}
    _copy(art, out, "name", "description")
    out["parts"] = [to_v03_part(p) for p in art.get("parts") or []]
    _copy(art, out, "metadata", "extensions")
    return out


def to_v1_task(task: Json) -> Json:
    out: Json = {"id": task.get("id", "")}
    _put(out, "contextId", task.get("contextId"))
    out["status"] = to_v1_status(task.get("status") or {})
    _put(out, "artifacts", [to_v1_artifact(a) for a in task.get("artifacts") or []])
    _put(out, "history", [to_v1_message(m) for m in task.get("history") or []])
    _put(out, "metadata", task.get("metadata"))
    return out


def to_v03_task(task: Json) -> Json:
    out: Json = {"kind": "task", "id": task.get("id", ""), "contextId": task.get("contextId", ""),
                 "status": to_v03_status(task.get("status") or {})}
    _put(out, "artifacts", [to_v03_artifact(a) for a in task.get("artifacts") or []])
    _put(out, "history", [to_v03_message(m) for m in task.get("history") or []])
    _put(out, "metadata", task.get("metadata"))
    return out


def to_v1_status_update(event: Json) -> Json:
    out: Json = {"taskId": event.get("taskId", ""), "contextId": event.get("contextId", ""),
                 "status": to_v1_status(event.get("status") or {})}
    _put(out, "metadata", event.get("metadata"))
    return out


def to_v03_status_update(event: Json, final: bool | None = None) -> Json:
    """``final`` defaults to: the state ends the stream (terminal or interrupted)."""
    status = to_v03_status(event.get("status") or {})
    if final is None:
        final = is_terminal(status["state"]) or is_interrupted(status["state"])
    out: Json = {"kind": "status-update", "taskId": event.get("taskId", ""),
                 "contextId": event.get("contextId", ""), "status": status, "final": final}
    _put(out, "metadata", event.get("metadata"))
    return out


def to_v1_artifact_update(event: Json) -> Json:
    out: Json = {"taskId": event.get("taskId", ""), "contextId": event.get("contextId", ""),
                 "artifact": to_v1_artifact(event.get("artifact") or {})}
    if event.get("append"):
        out["append"] = True
    if event.get("lastChunk"):
        out["lastChunk"] = True
    _put(out, "metadata", event.get("metadata"))
    return out


def to_v03_artifact_update(event: Json) -> Json:
    out: Json = {"kind": "artifact-update", "taskId": event.get("taskId", ""),
                 "contextId": event.get("contextId", ""),
                 "artifact": to_v03_artifact(event.get("artifact") or {}),
                 "append": bool(event.get("append")), "lastChunk": bool(event.get("lastChunk"))}
    _put(out, "metadata", event.get("metadata"))
    return out


_V1_WRAPPERS = ("task", "message", "statusUpdate", "artifactUpdate")


def to_v1_stream_response(result: Json) -> Json:
    """A v0.3 kind-tagged result (task, message, status-update, artifact-update) -> StreamResponse.
    Also right for a v0.3 ``message/send`` result (SendMessageResponse is the task|message half)."""
    if any(key in result for key in _V1_WRAPPERS) and "kind" not in result:
        return dict(result)  # already v1.0
    kind = result.get("kind")
    if kind == "task":
        return {"task": to_v1_task(result)}
    if kind == "message":
        return {"message": to_v1_message(result)}
    if kind == "status-update":
        return {"statusUpdate": to_v1_status_update(result)}
    if kind == "artifact-update":
        return {"artifactUpdate": to_v1_artifact_update(result)}
    if "status" in result and "id" in result:
        return {"task": to_v1_task(result)}  # untagged legacy task
    if "messageId" in result:
        return {"message": to_v1_message(result)}
    raise ValueError(f"not an A2A result: kind {kind!r}")


def to_v03_stream_response(response: Json) -> Json:
    """A v1.0 StreamResponse (or SendMessageResponse) -> the v0.3 kind-tagged object."""
    if "kind" in response:
        return dict(response)
    if "task" in response:
        return to_v03_task(response["task"])
    if "message" in response:
        return to_v03_message(response["message"])
    if "statusUpdate" in response:
        return to_v03_status_update(response["statusUpdate"])
    if "artifactUpdate" in response:
        return to_v03_artifact_update(response["artifactUpdate"])
    raise ValueError("StreamResponse has none of task, message, statusUpdate, artifactUpdate")


to_v1_send_response = to_v1_stream_response
to_v03_send_response = to_v03_stream_response


# -- push notification configs --------------------------------------------------------------

def to_v1_push_config(config: Json, task_id: str | None = None) -> Json:
    """v0.3 ``PushNotificationConfig`` (or ``TaskPushNotificationConfig``) -> v1.0 flat config."""
    if "pushNotificationConfig" in config:
        return to_v1_push_config(config["pushNotificationConfig"] or {}, config.get("taskId"))
    out: Json = {}
    _put(out, "id", config.get("id"))
    _put(out, "taskId", task_id or config.get("taskId"))
    out["url"] = config.get("url", "")
    _put(out, "token", config.get("token"))
    auth = config.get("authentication")
    if auth:
        v1_auth: Json = {}
        if "scheme" in auth:
            _put(v1_auth, "scheme", auth.get("scheme"))
        else:
            _put(v1_auth, "scheme", (auth.get("schemes") or [""])[0])
        _put(v1_auth, "credentials", auth.get("credentials"))
        out["authentication"] = v1_auth
    return out


def to_v03_push_config(config: Json) -> Json:
    """v1.0 flat config -> v0.3 ``PushNotificationConfig`` (without the task id)."""
    if "pushNotificationConfig" in config:
        return dict(config["pushNotificationConfig"])
    out: Json = {"url": config.get("url", "")}
    _copy(config, out, "id", "token")
    auth = config.get("authentication")
    if auth is not None:
        v03_auth: Json = {"schemes": [auth["scheme"]] if auth.get("scheme") else
                          list(auth.get("schemes") or [])}
        _put(v03_auth, "credentials", auth.get("credentials"))
        out["authentication"] = v03_auth
    return out


def to_v03_task_push_config(config: Json) -> Json:
    """v1.0 flat config -> v0.3 ``TaskPushNotificationConfig{taskId, pushNotificationConfig}``."""
    if "pushNotificationConfig" in config:
        return dict(config)
    return {"taskId": config.get("taskId", ""),
            "pushNotificationConfig": to_v03_push_config(config)}


to_v1_task_push_config = to_v1_push_config


# -- send parameters -----------------------------------------------------------------------

def to_v1_send_configuration(cfg: Json) -> Json:
    out: Json = {}
    _put(out, "acceptedOutputModes", cfg.get("acceptedOutputModes"))
    push = cfg.get("pushNotificationConfig") or cfg.get("taskPushNotificationConfig")
    if push:
        out["taskPushNotificationConfig"] = to_v1_push_config(push)
    if cfg.get("historyLength"):  # v0.3 treats 0 as "all": leave it unset
        out["historyLength"] = cfg["historyLength"]
    if cfg.get("blocking") is not None:
        out["returnImmediately"] = not cfg["blocking"]
    elif cfg.get("returnImmediately") is not None:
        out["returnImmediately"] = bool(cfg["returnImmediately"])
    return out


def to_v03_send_configuration(cfg: Json) -> Json:
    out: Json = {}
    _put(out, "acceptedOutputModes", cfg.get("acceptedOutputModes"))
    push = cfg.get("taskPushNotificationConfig") or cfg.get("pushNotificationConfig")
    if push:
        out["pushNotificationConfig"] = to_v03_push_config(push)
    if cfg.get("historyLength") is not None:
        out["historyLength"] = cfg["historyLength"]
    if "blocking" in cfg:
        out["blocking"] = bool(cfg["blocking"])
    else:
        out["blocking"] = not cfg.get("returnImmediately", False)
    return out


def to_v1_send_params(params: Json) -> Json:
    """v0.3 ``MessageSendParams`` -> v1.0 ``SendMessageRequest``."""
    out: Json = {"message": to_v1_message(params.get("message") or {})}
    if params.get("configuration"):
        out["configuration"] = to_v1_send_configuration(params["configuration"])
    _copy(params, out, "metadata", "tenant")
    return out


def to_v03_send_params(request: Json) -> Json:
    out: Json = {"message": to_v03_message(request.get("message") or {})}
    if request.get("configuration") is not None:
        out["configuration"] = to_v03_send_configuration(request["configuration"])
    _put(out, "metadata", request.get("metadata"))
    return out


# -- agent cards ---------------------------------------------------------------------------

_SCHEME_TYPES = {"apiKey": "apiKeySecurityScheme", "http": "httpAuthSecurityScheme",
                 "oauth2": "oauth2SecurityScheme", "openIdConnect": "openIdConnectSecurityScheme",
                 "mutualTLS": "mtlsSecurityScheme"}
_FLOWS = ("authorizationCode", "clientCredentials", "implicit", "password")
_FLOW_FIELDS = ("authorizationUrl", "deviceAuthorizationUrl", "tokenUrl", "refreshUrl")


def _flow(flow: Json, keep_pkce: bool) -> Json:
    out: Json = {}
    _copy(flow, out, *_FLOW_FIELDS)
    out["scopes"] = dict(flow.get("scopes") or {})
    if keep_pkce and flow.get("pkceRequired"):
        out["pkceRequired"] = True
    return out


def to_v1_security_scheme(scheme: Json) -> Json:
    if scheme.get("type") is None:
        return dict(scheme)
    kind = scheme["type"]
    body: Json = {}
    if kind == "apiKey":
        _put(body, "location", scheme.get("in"))
        _put(body, "name", scheme.get("name"))
    elif kind == "http":
        _copy(scheme, body, "scheme", "bearerFormat")
    elif kind == "oauth2":
        flows = scheme.get("flows") or {}
        # v1.0 flows are a oneof; like a2a-sdk, the last flow present wins.
        chosen = [name for name in _FLOWS if flows.get(name)]
        body["flows"] = {chosen[-1]: _flow(flows[chosen[-1]], False)} if chosen else {}
        _put(body, "oauth2MetadataUrl", scheme.get("oauth2MetadataUrl"))
    elif kind == "openIdConnect":
        _put(body, "openIdConnectUrl", scheme.get("openIdConnectUrl"))
    elif kind != "mutualTLS":
        raise ValueError(f"unknown security scheme type {kind!r}")
    _put(body, "description", scheme.get("description"))
    return {_SCHEME_TYPES[kind]: body}


def to_v03_security_scheme(scheme: Json) -> Json:
    if "type" in scheme:
        return dict(scheme)
    found = [(kind, wrapper) for kind, wrapper in _SCHEME_TYPES.items() if wrapper in scheme]
    if not found:
        raise ValueError("security scheme has no known member")
    kind, wrapper = found[0]
    body = scheme[wrapper] or {}
    out: Json = {"type": kind}
    if kind == "apiKey":
        out["in"] = body.get("location", "header")
        out["name"] = body.get("name", "")
    elif kind == "http":
        out["scheme"] = body.get("scheme", "")
        _put(out, "bearerFormat", body.get("bearerFormat"))
    elif kind == "oauth2":
        flows = body.get("flows") or {}
        out["flows"] = {name: _flow(flows[name], False) for name in _FLOWS if name in flows}
        _put(out, "oauth2MetadataUrl", body.get("oauth2MetadataUrl"))
    elif kind == "openIdConnect":
        out["openIdConnectUrl"] = body.get("openIdConnectUrl", "")
    _put(out, "description", body.get("description"))
    return out


def to_v1_security_requirements(reqs: list[Json] | None) -> list[Json]:
    """v0.3 ``[{name: [scopes]}]`` -> v1.0 ``[{schemes: {name: {list: [scopes]}}}]``."""
    out = []
    for req in reqs or []:
        if "schemes" in req and isinstance(req["schemes"], dict):
            out.append(dict(req))
        else:
            out.append({"schemes": {name: {"list": list(scopes)} if scopes else {}
                                    for name, scopes in req.items()}})
    return out


def to_v03_security_requirements(reqs: list[Json] | None) -> list[Json]:
    return [{name: list((value or {}).get("list") or [])
             for name, value in (req.get("schemes") or {}).items()} for req in reqs or []]


def to_v1_skill(skill: Json) -> Json:
    out: Json = {"id": skill.get("id", ""), "name": skill.get("name", ""),
                 "description": skill.get("description", "")}
    _copy(skill, out, "tags", "examples", "inputModes", "outputModes")
    _put(out, "securityRequirements", to_v1_security_requirements(skill.get("security")))
    return out


def to_v03_skill(skill: Json) -> Json:
    out: Json = {"id": skill.get("id", ""), "name": skill.get("name", ""),
                 "description": skill.get("description", ""),
                 "tags": list(skill.get("tags") or [])}
    _copy(skill, out, "examples", "inputModes", "outputModes")
    _put(out, "security", to_v03_security_requirements(skill.get("securityRequirements")))
    return out


def _extension(ext: Json, v1: bool) -> Json:
    """v1.0 leaves ``required: false`` out (proto3 default); v0.3 always says it."""
    out: Json = {"uri": ext.get("uri", "")}
    _put(out, "description", ext.get("description"))
    if ext.get("required") or not v1:
        out["required"] = bool(ext.get("required"))
    _put(out, "params", ext.get("params"))
    return out


def _signature(sig: Json) -> Json:
    out: Json = {"protected": sig.get("protected", ""), "signature": sig.get("signature", "")}
    _put(out, "header", sig.get("header"))
    return out


def is_v1_card(card: Json) -> bool:
    return "supportedInterfaces" in card


def card_protocol_versions(card: Json) -> list[str]:
    """Protocol versions a card offers, preferred first ("1.0", "0.3.0", ...)."""
    if is_v1_card(card):
        return [str(i.get("protocolVersion") or "0.3") for i in card["supportedInterfaces"]]
    return [str(card.get("protocolVersion") or "0.3.0")]


def is_legacy_version(version: str | None) -> bool:
    return not version or str(version).startswith("0.")


def to_v1_card(card: Json) -> Json:
    """v0.3 AgentCard -> v1.0 (main url + additional interfaces become supportedInterfaces)."""
    if is_v1_card(card):
        return dict(card)
    out: Json = {"name": card.get("name", ""), "description": card.get("description", ""),
                 "version": card.get("version", "")}
    interfaces = [{"url": card.get("url", ""),
                   "protocolBinding": card.get("preferredTransport") or "JSONRPC",
                   "protocolVersion": card.get("protocolVersion") or "0.3"}]
    interfaces += [{"url": i.get("url", ""), "protocolBinding": i.get("transport", ""),
                    "protocolVersion": "0.3"} for i in card.get("additionalInterfaces") or []]
    out["supportedInterfaces"] = interfaces
    if card.get("provider"):
        out["provider"] = {"url": card["provider"].get("url", ""),
                           "organization": card["provider"].get("organization", "")}
    _copy(card, out, "documentationUrl", "iconUrl")
    caps_in = card.get("capabilities") or {}
    caps: Json = {}
    for key in ("streaming", "pushNotifications"):
        if caps_in.get(key) is not None:
            caps[key] = bool(caps_in[key])
    _put(caps, "extensions", [_extension(e, True) for e in caps_in.get("extensions") or []])
    if card.get("supportsAuthenticatedExtendedCard") is not None:
        caps["extendedAgentCard"] = bool(card["supportsAuthenticatedExtendedCard"])
    out["capabilities"] = caps
    _put(out, "securitySchemes", {k: to_v1_security_scheme(v)
                                  for k, v in (card.get("securitySchemes") or {}).items()})
    _put(out, "securityRequirements", to_v1_security_requirements(card.get("security")))
    _copy(card, out, "defaultInputModes", "defaultOutputModes")
    _put(out, "skills", [to_v1_skill(s) for s in card.get("skills") or []])
    _put(out, "signatures", [_signature(s) for s in card.get("signatures") or []])
    return out


def to_v03_card(card: Json) -> Json:
    """v1.0 AgentCard -> v0.3. The legacy interfaces (protocolVersion 0.x or none) become ``url``
    and ``additionalInterfaces``; a card without any keeps all its interfaces, announced as 0.3
    (a server that speaks both dialects on one endpoint)."""
    if not is_v1_card(card):
        return dict(card)
    interfaces = card.get("supportedInterfaces") or []
    legacy = [i for i in interfaces if is_legacy_version(i.get("protocolVersion"))]
    chosen = legacy or interfaces or [{"url": "", "protocolBinding": "JSONRPC"}]
    primary = chosen[0]
    version = primary.get("protocolVersion") if legacy else None
    caps_in = card.get("capabilities") or {}
    caps: Json = {}
    for key in ("streaming", "pushNotifications"):
        if caps_in.get(key) is not None:
            caps[key] = bool(caps_in[key])
    _put(caps, "extensions", [_extension(e, False) for e in caps_in.get("extensions") or []])
    out: Json = {"name": card.get("name", ""), "description": card.get("description", ""),
                 "version": card.get("version", ""), "url": primary.get("url", ""),
                 "preferredTransport": primary.get("protocolBinding") or "JSONRPC",
                 "protocolVersion": version or "0.3.0"}
    _put(out, "additionalInterfaces", [{"url": i.get("url", ""),
                                        "transport": i.get("protocolBinding", "")}
                                       for i in chosen[1:]])
    if card.get("provider"):
        out["provider"] = {"url": card["provider"].get("url", ""),
                           "organization": card["provider"].get("organization", "")}
    _copy(card, out, "documentationUrl", "iconUrl")
    out["capabilities"] = caps
    if caps_in.get("extendedAgentCard") is not None:
        out["supportsAuthenticatedExtendedCard"] = bool(caps_in["extendedAgentCard"])
    _put(out, "securitySchemes", {k: to_v03_security_scheme(v)
                                  for k, v in (card.get("securitySchemes") or {}).items()})
    _put(out, "security", to_v03_security_requirements(card.get("securityRequirements")))
    out["defaultInputModes"] = list(card.get("defaultInputModes") or [])
    out["defaultOutputModes"] = list(card.get("defaultOutputModes") or [])
    out["skills"] = [to_v03_skill(s) for s in card.get("skills") or []]
    _put(out, "signatures", [_signature(s) for s in card.get("signatures") or []])
    return out


# -- operations: method names, errors, request/response conversion ---------------------------

OPERATIONS = ("send", "stream", "get", "list", "cancel", "subscribe", "push_set", "push_get",
              "push_list", "push_delete", "extended_card")

METHODS_V1 = {
    "send": "SendMessage", "stream": "SendStreamingMessage", "get": "GetTask",
    "list": "ListTasks", "cancel": "CancelTask", "subscribe": "SubscribeToTask",
    "push_set": "CreateTaskPushNotificationConfig", "push_get": "GetTaskPushNotificationConfig",
    "push_list": "ListTaskPushNotificationConfigs",
    "push_delete": "DeleteTaskPushNotificationConfig", "extended_card": "GetExtendedAgentCard",
}
METHODS_V03 = {
    "send": "message/send", "stream": "message/stream", "get": "tasks/get",
    "cancel": "tasks/cancel", "subscribe": "tasks/resubscribe",
    "push_set": "tasks/pushNotificationConfig/set", "push_get": "tasks/pushNotificationConfig/get",
    "push_list": "tasks/pushNotificationConfig/list",
    "push_delete": "tasks/pushNotificationConfig/delete",
    "extended_card": "agent/getAuthenticatedExtendedCard",
}
OPERATION_OF_METHOD = {**{m: op for op, m in METHODS_V1.items()},
                       **{m: op for op, m in METHODS_V03.items()}}
STREAMING_OPERATIONS = frozenset({"stream", "subscribe"})


def method_dialect(method: str) -> str | None:
    """"1.0", "0.3" or None (not an A2A method)."""
    if method in METHODS_V1.values():
        return "1.0"
    if method in METHODS_V03.values():
        return "0.3"
    return None


def request_to_v1(op: str, params: Json) -> Json:
    """v0.3 params of an operation -> v1.0 params."""
    params = params or {}
    if op in ("send", "stream"):
        return to_v1_send_params(params)
    if op == "push_set":
        return to_v1_push_config(params)
    if op in ("push_get", "push_delete"):
        out: Json = {"taskId": params.get("id", "")}
        _put(out, "id", params.get("pushNotificationConfigId"))
        return out
    if op == "push_list":
        return {"taskId": params.get("id", "")}
    if op == "get":
        out = {"id": params.get("id", "")}
        if params.get("historyLength"):
            out["historyLength"] = params["historyLength"]
        return out
    return dict(params)  # cancel, subscribe, list, extended_card: same shape


def request_to_v03(op: str, params: Json) -> Json:
    """v1.0 params of an operation -> v0.3 params."""
    params = params or {}
    if op in ("send", "stream"):
        return to_v03_send_params(params)
    if op == "push_set":
        return to_v03_task_push_config(params)
    if op in ("push_get", "push_delete"):
        out: Json = {"id": params.get("taskId", "")}
        _put(out, "pushNotificationConfigId", params.get("id"))
        return out
    if op == "push_list":
        return {"id": params.get("taskId", "")}
    return {k: v for k, v in params.items() if k != "tenant"}


def response_to_v1(op: str, result: Any) -> Any:
    """A v0.3 result of an operation -> the v1.0 result."""
    if op in ("send", "stream", "subscribe"):
        return to_v1_stream_response(result)
    if op in ("get", "cancel"):
        return to_v1_task(result)
    if op in ("push_set", "push_get"):
        return to_v1_push_config(result)
    if op == "push_list":
        return {"configs": [to_v1_push_config(c) for c in result or []]}
    if op == "push_delete":
        return {}
    if op == "extended_card":
        return to_v1_card(result)
    return result


def response_to_v03(op: str, result: Any) -> Any:
    """A v1.0 result of an operation -> the v0.3 result."""
    if op in ("send", "stream", "subscribe"):
        return to_v03_stream_response(result)
    if op in ("get", "cancel"):
        return to_v03_task(result)
    if op in ("push_set", "push_get"):
        return to_v03_task_push_config(result)
    if op == "push_list":
        return [to_v03_task_push_config(c) for c in (result or {}).get("configs") or []]
    if op == "push_delete":
        return None
    if op == "extended_card":
        return to_v03_card(result)
    return result


# Values under these keys are user JSON (google.protobuf.Struct / Value): never renamed.
_OPAQUE_KEYS = frozenset({"metadata", "data"})


def camel_case_names(value: Any) -> Any:
    """v1.0 requests in proto JSON may use the proto field names (``task_id``) as well as the
    JSON names (``taskId``) — protobuf's own parser accepts both, so clients send either.
    Rename snake_case keys to camelCase, leaving user data (``metadata``, ``data``) alone."""
    if isinstance(value, list):
        return [camel_case_names(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = _camel(key) if isinstance(key, str) and "_" in key else key
        out[name] = item if name in _OPAQUE_KEYS else camel_case_names(item)
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
