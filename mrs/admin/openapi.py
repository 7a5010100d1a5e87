"""
The OpenAPI 3 description of the JSON API in L{mrs.admin.api}, served at
C{/api/v1/openapi.json}.
"""

from __future__ import annotations

import copy
from typing import Any

from mrs.store.models import RIGHTS

Schema = dict[str, Any]

NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


STRING: Schema = {"type": "string"}
NAME: Schema = {"type": "string", "pattern": NAME_PATTERN}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
NULLABLE_NUMBER: Schema = {"type": "number", "nullable": True}

SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": STRING}, ["error"]),
    "Device": _object({
        "deviceId": STRING, "displayName": STRING, "enabled": BOOLEAN,
        "allowPlaintext": BOOLEAN, "created": NUMBER, "changed": NUMBER,
    }, ["deviceId", "displayName", "enabled", "allowPlaintext", "created", "changed"]),
    "User": _object({
        "name": STRING, "role": {"type": "string", "enum": ["admin", "operator"]},
        "enabled": BOOLEAN, "mustChangePassword": BOOLEAN, "created": NUMBER,
        "changed": NUMBER,
    }, ["name", "role", "enabled", "mustChangePassword", "created", "changed"]),
    "Group": _object({
        "kind": {"type": "string", "enum": ["user", "device"]}, "name": STRING,
        "members": _array(STRING),
    }, ["kind", "name", "members"]),
    "Schedule": {
        **_object({
            "days": _array({"type": "integer", "minimum": 0, "maximum": 6}),
            "start": {"type": "integer", "minimum": 0, "maximum": 1440},
            "end": {"type": "integer", "minimum": 0, "maximum": 1440},
        }),
        "nullable": True,
    },
    "Rule": _object({
        "ruleId": {"type": "integer"},
        "subjectKind": {"type": "string", "enum": ["user", "user_group"]},
        "subject": STRING,
        "targetKind": {"type": "string", "enum": ["device", "device_group"]},
        "target": STRING,
        "rights": _array({"type": "string", "enum": list(RIGHTS)}),
        "schedule": _ref("Schedule"),
        "created": NUMBER,
    }, ["ruleId", "subjectKind", "subject", "targetKind", "target", "rights", "schedule",
        "created"]),
    "ApiToken": _object({
        "tokenId": {"type": "integer"}, "user": STRING, "label": STRING,
        "created": NUMBER, "lastUsed": NULLABLE_NUMBER,
    }, ["tokenId", "user", "label", "created", "lastUsed"]),
    "AuditEntry": _object({
        "entryId": {"type": "integer"}, "time": NUMBER, "actor": STRING, "action": STRING,
        "object": STRING, "detail": STRING,
    }, ["entryId", "time", "actor", "action", "object", "detail"]),
    "Certificate": _object({
        "subject": STRING, "issuer": STRING, "sans": _array(STRING),
        "notBefore": STRING, "notAfter": STRING, "sha256": STRING,
        "keyDescription": STRING, "selfSigned": BOOLEAN,
    }, ["subject", "issuer", "sans", "notBefore", "notAfter", "sha256", "keyDescription",
        "selfSigned"]),
    "Problem": _object({
        "field": {"type": "string", "enum": ["key", "certificate", "chain", "passphrase"]},
        "severity": {"type": "string", "enum": ["error", "warning"]},
        "message": STRING,
    }, ["field", "severity", "message"]),
    "Report": _object({
        "installed": BOOLEAN,
        "problems": _array(_ref("Problem")),
        "certificate": {"allOf": [_ref("Certificate")], "nullable": True},
    }, ["installed", "problems", "certificate"]),
    "Session": _object({
        "role": STRING, "name": STRING, "address": STRING, "encrypted": BOOLEAN,
        "tlsVersion": {"type": "string", "nullable": True},
        "cipher": {"type": "string", "nullable": True},
        "since": NULLABLE_NUMBER, "connectedSeconds": NULLABLE_NUMBER,
        "bitrateIn": {"type": "object", "additionalProperties": NUMBER},
        "bitrateOut": {"type": "object", "additionalProperties": NUMBER},
        "subscribers": {"type": "integer"},
        "lastLocation": {**_object({"lat": NUMBER, "lon": NUMBER}, ["lat", "lon"]),
                         "nullable": True},
        "lastLocationAge": NULLABLE_NUMBER,
        "subscriptions": _array(STRING),
        "droppedFrames": {"type": "integer"},
    }, ["role", "name", "address", "encrypted", "since", "bitrateIn", "bitrateOut",
        "subscribers", "lastLocation"]),
    "Status": _object({
        "time": NUMBER, "uptimeSeconds": NUMBER, "devicesOnline": {"type": "integer"},
        "monitorsOnline": {"type": "integer"}, "sessions": _array(_ref("Session")),
        "certificate": {
            "allOf": [_ref("Certificate")], "nullable": True,
        },
    }, ["time", "uptimeSeconds", "devicesOnline", "monitorsOnline", "sessions",
        "certificate"]),
    "Setting": _object({
        "key": STRING, "section": STRING, "value": STRING, "restart": BOOLEAN, "help": STRING,
    }, ["key", "section", "value", "restart", "help"]),
}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    descriptions = {
        400: "The request is invalid; the message says which field and why.",
        401: "No API token, or an unknown one.",
        403: "The token's account is not an enabled administrator.",
        404: "Not found.",
        409: "Conflicts with the current state (exists already, or your own account).",
        422: "The key and certificate were rejected; nothing was changed.",
    }
    return {str(code): _json(_ref("Error"), descriptions[code]) for code in codes}


def _body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _operation(summary: str, responses: dict[str, Schema], *, errors: tuple[int, ...] = (),
               body: Schema | None = None, parameters: list[Schema] | None = None) -> Schema:
    operation: Schema = {
        "summary": summary,
        "responses": {**responses, **_errors(401, 403, *errors)},
    }
    if body is not None:
        operation["requestBody"] = _body(body)
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path(name: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema or STRING}


def _query(name: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema or STRING}


NO_CONTENT = {"204": {"description": "Done."}}
REJECTED = _json(_ref("Report"), "Rejected; nothing was changed.")
KIND = _path("kind", {"type": "string", "enum": ["user", "device"]})
PAIR = _object({"key": STRING, "certificate": STRING, "chain": STRING, "passphrase": STRING},
               ["key", "certificate"])


def _paths() -> dict[str, Schema]:
    return {
        "/status": {"get": _operation(
            "Connected clients, uptime and certificate.",
            {"200": _json(_ref("Status"), "The status.")})},
        "/devices": {
            "get": _operation("List devices.", {"200": _json(_array(_ref("Device")), "Devices.")},
                              parameters=[_query("q")]),
            "post": _operation(
                "Add a device; the response holds its secret, shown only this once.",
                {"201": _json(_object({"device": _ref("Device"), "secret": STRING},
                                      ["device", "secret"]), "Added.")},
                errors=(400, 409),
                body=_object({"deviceId": NAME, "displayName": STRING,
                              "allowPlaintext": BOOLEAN}, ["deviceId"])),
        },
        "/devices/{deviceId}": {
            "parameters": [_path("deviceId")],
            "get": _operation("Get a device.", {"200": _json(_ref("Device"), "The device.")},
                              errors=(404,)),
            "patch": _operation(
                "Change a device's name, plaintext exception or state.",
                {"200": _json(_ref("Device"), "The changed device.")}, errors=(400, 404),
                body=_object({"displayName": STRING, "allowPlaintext": BOOLEAN,
                              "enabled": BOOLEAN})),
            "delete": _operation("Remove a device.", NO_CONTENT, errors=(404,)),
        },
        "/devices/{deviceId}/secret": {
            "parameters": [_path("deviceId")],
            "post": _operation("Reset a device's secret; the new one is shown only this once.",
                               {"200": _json(_object({"secret": STRING}, ["secret"]), "Reset.")},
                               errors=(404,)),
        },
        "/users": {
            "get": _operation("List users.", {"200": _json(_array(_ref("User")), "Users.")},
                              parameters=[_query("q")]),
            "post": _operation(
                "Add a user with the given password, or with a one-time password that is "
                "returned only this once.",
                {"201": _json(_object({"user": _ref("User"), "password": STRING},
                                      ["user"]), "Added.")},
                errors=(400, 409),
                body=_object({"name": NAME,
                              "role": {"type": "string", "enum": ["admin", "operator"]},
                              "password": {"type": "string", "minLength": 12,
                                           "maxLength": 1000}},
                             ["name"])),
        },
        "/users/{name}": {
            "parameters": [_path("name")],
            "get": _operation("Get a user.", {"200": _json(_ref("User"), "The user.")},
                              errors=(404,)),
            "patch": _operation(
                "Change a user's role or state.",
                {"200": _json(_ref("User"), "The changed user.")}, errors=(400, 404, 409),
                body=_object({"role": {"type": "string", "enum": ["admin", "operator"]},
                              "enabled": BOOLEAN})),
            "delete": _operation("Remove a user.", NO_CONTENT, errors=(404, 409)),
        },
        "/users/{name}/password": {
            "parameters": [_path("name")],
            "post": _operation(
                "Reset a user's password to a one-time one, shown only this once.",
                {"200": _json(_object({"password": STRING}, ["password"]), "Reset.")},
                errors=(404, 409)),
        },
        "/users/{name}/logout": {
            "parameters": [_path("name")],
            "post": _operation(
                "End every client session and admin web session of a user now.",
                {"200": _json(_object({"sessions": {"type": "integer", "minimum": 0}},
                                      ["sessions"]), "Sessions ended.")},
                errors=(404,)),
        },
        "/users/{name}/tokens": {
            "parameters": [_path("name")],
            "get": _operation("List a user's API tokens.",
                              {"200": _json(_array(_ref("ApiToken")), "Tokens.")},
                              errors=(404,)),
            "post": _operation(
                "Create an API token for an administrator; shown only this once.",
                {"201": _json(_object({"token": STRING, "apiToken": _ref("ApiToken")},
                                      ["token", "apiToken"]), "Created.")},
                errors=(400, 404, 409),
                body=_object({"label": {"type": "string", "minLength": 1, "maxLength": 100}},
                             ["label"])),
        },
        "/users/{name}/tokens/{tokenId}": {
            "parameters": [_path("name"), _path("tokenId", {"type": "integer", "minimum": 0})],
            "delete": _operation("Revoke an API token (not the one authorizing the request).",
                                 NO_CONTENT, errors=(404, 409)),
        },
        "/groups/{kind}": {
            "parameters": [KIND],
            "get": _operation("List the groups of one kind.",
                              {"200": _json(_array(_ref("Group")), "Groups.")}, errors=(404,)),
            "post": _operation("Add a group.", {"201": _json(_ref("Group"), "Added.")},
                               errors=(400, 404, 409),
                               body=_object({"name": NAME}, ["name"])),
        },
        "/groups/{kind}/{name}": {
            "parameters": [KIND, _path("name")],
            "get": _operation("Get a group.", {"200": _json(_ref("Group"), "The group.")},
                              errors=(404,)),
            "delete": _operation("Remove a group and the rules that name it.", NO_CONTENT,
                                 errors=(404,)),
        },
        "/groups/{kind}/{name}/members/{member}": {
            "parameters": [KIND, _path("name"), _path("member")],
            "put": _operation("Put a user or device into a group.",
                              {"200": _json(_ref("Group"), "The group.")},
                              errors=(400, 404, 409)),
            "delete": _operation("Take a user or device out of a group.",
                                 {"200": _json(_ref("Group"), "The group.")}, errors=(404,)),
        },
        "/rules": {
            "get": _operation("List the permission rules.",
                              {"200": _json(_array(_ref("Rule")), "Rules.")}),
            "post": _operation(
                "Grant rights from a user or user group to a device or device group.",
                {"201": _json(_ref("Rule"), "Added.")}, errors=(400, 404, 409),
                body=_object({
                    "subjectKind": {"type": "string", "enum": ["user", "user_group"]},
                    "subject": NAME,
                    "targetKind": {"type": "string", "enum": ["device", "device_group"]},
                    "target": NAME,
                    "rights": _array({"type": "string", "enum": list(RIGHTS)}),
                    "schedule": _ref("Schedule"),
                }, ["subjectKind", "subject", "targetKind", "target", "rights"])),
        },
        "/rules/{ruleId}": {
            "parameters": [_path("ruleId", {"type": "integer", "minimum": 0})],
            "patch": _operation(
                "Replace the rights a rule grants; live sessions lose what was taken at once.",
                {"200": _json(_ref("Rule"), "Changed.")},
                errors=(400, 404),
                body=_object({"rights": _array({"type": "string", "enum": list(RIGHTS)})},
                             ["rights"])),
            "delete": _operation("Remove a rule.", NO_CONTENT, errors=(400, 404)),
        },
        "/explain": {"get": _operation(
            "The rights of a user on a device and the rule behind each.",
            {"200": _json(_object({
                "user": STRING, "device": STRING,
                "rights": _array(_object({"right": STRING,
                                          "ruleId": {"type": "integer", "nullable": True}},
                                         ["right", "ruleId"])),
            }, ["user", "device", "rights"]), "The rights.")},
            errors=(400, 404),
            parameters=[{**_query("user"), "required": True},
                        {**_query("device"), "required": True}])},
        "/certificate": {
            "get": _operation(
                "The certificate the server presents, with its PEM.",
                {"200": _json({"allOf": [_ref("Certificate"), _object(
                    {"pem": STRING, "daysToExpiry": NUMBER}, ["pem", "daysToExpiry"])]},
                    "The certificate.")},
                errors=(404,)),
            "put": _operation(
                "Validate and install a private key and certificate; a pair with errors "
                "is rejected and the current one stays.",
                {"200": _json(_ref("Report"), "Installed."), "422": REJECTED},
                errors=(400,), body=PAIR),
        },
        "/certificate/check": {"post": _operation(
            "Validate a private key and certificate without installing them.",
            {"200": _json(_ref("Report"), "The findings.")}, errors=(400,), body=PAIR)},
        "/certificate/generate": {"post": _operation(
            "Generate a key with a self-signed certificate (installed at once) or with a "
            "certificate signing request.",
            {"200": _json(_object({
                "certificate": {"allOf": [_ref("Certificate")], "nullable": True},
                "csr": {"type": "string", "nullable": True},
            }, ["certificate", "csr"]), "Generated.")},
            errors=(400,),
            body=_object({
                "keyType": {"type": "string",
                            "enum": ["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"]},
                "selfSigned": BOOLEAN, "commonName": STRING, "organization": STRING,
            }))},
        "/certificate/signed": {"put": _operation(
            "Install the signed certificate for the pending signing request's key.",
            {"200": _json(_ref("Report"), "Installed."), "422": REJECTED},
            errors=(400, 409),
            body=_object({"certificate": STRING, "chain": STRING}, ["certificate"]))},
        "/settings": {"get": _operation(
            "Every setting with its value in use.",
            {"200": _json(_array(_ref("Setting")), "Settings.")})},
        "/settings/{key}": {
            "parameters": [_path("key")],
            "put": _operation(
                "Change a setting that applies without a restart.",
                {"200": _json(_object({"key": STRING, "value": STRING}, ["key", "value"]),
                              "Changed.")},
                errors=(400, 404), body=_object({"value": STRING}, ["value"])),
        },
        "/audit": {"get": _operation(
            "Audit entries, newest first.",
            {"200": _json(_array(_ref("AuditEntry")), "Entries.")}, errors=(400,),
            parameters=[_query("actor"), _query("action"), _query("object"),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})])},
    }


def openApiDocument() -> dict[str, Any]:
    """
    Return the OpenAPI 3.0 document of the API.
    """
    return copy.deepcopy({
        "openapi": "3.0.3",
        "info": {
            "title": "MRS server admin API",
            "version": "1",
            "description": (
                "Manage devices, users, groups, permission rules and the server's TLS "
                "certificate. Authenticate with an administrator's API token: "
                "'Authorization: Bearer TOKEN'."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": _paths(),
    })
