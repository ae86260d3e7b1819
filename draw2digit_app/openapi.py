"""OpenAPI 3 description of the API, served at ``/openapi.json`` and checked by schemathesis."""

from __future__ import annotations

from draw2digit import __version__


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _limited(what: str) -> dict:
    return {
        **_error(f"Too many {what} from this client address; try again after Retry-After seconds"),
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    }


def _taught(what: str) -> dict:
    """The fields an answer carries when what its user taught changed it (a drawing, or a number's digit)."""
    return {
        "personalized": {
            "type": "boolean",
            "description": f"with 'user': {what} differs from the model's because of what this user taught",
        },
        "model_digit": {
            "type": "integer",
            "minimum": 0,
            "maximum": 9,
            "nullable": True,
            "description": "when personalized: the model's own answer (null: not a digit)",
        },
        "note": {"type": "string", "description": "when personalized: the sentence to show"},
    }


def spec(max_batch: int = 32) -> dict:
    label = {
        "oneOf": [
            {"type": "integer", "minimum": 0, "maximum": 9},
            {"type": "string", "enum": ["not a digit"]},
        ],
        "description": 'The digit the drawing really is, or "not a digit" (kept out of digit fine-tuning)',
    }
    stored = {
        "type": "object",
        "required": ["id", "label", "stored"],
        "properties": {
            "id": {"type": "integer"},
            "label": label,
            "stored": {"type": "integer", "minimum": 1},
            "duplicate": {"type": "boolean"},
            "learned": {
                "type": "boolean",
                "description": "with 'user': this user's next drawings like it are read as the label",
            },
        },
    }
    user = {
        "type": "string",
        "format": "uuid",
        "description": "An opaque random id (a UUID) per person: answers learn from their corrections",
    }
    final = {
        "type": "boolean",
        "default": False,
        "description": "With 'user': the drawing is finished, so an answer not corrected is remembered",
    }
    image_string = {
        "type": "string",
        "minLength": 1,
        "description": "A data URL (data:image/png;base64,...) or bare base64: PNG, JPEG, WebP, BMP, GIF.",
    }
    binary = {"schema": {"type": "string", "format": "binary"}}
    grid = {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 28, "maxItems": 28},
        "minItems": 28,
        "maxItems": 28,
    }
    mode = {
        "type": "string",
        "enum": ["digit", "number"],
        "default": "digit",
        "description": "digit: one digit (default); number: several digits side by side, read left to right",
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Draw2Digit API",
            "version": __version__,
            "description": "Read a hand-drawn digit (0-9) with a CNN trained on MNIST.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Read the digit in one drawing, or in a batch of drawings",
                    "operationId": "predict",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/SingleRequest"},
                                        {"$ref": "#/components/schemas/BatchRequest"},
                                    ]
                                }
                            },
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "user": user,
                                        "final": {"type": "string", "enum": ["true", "false"]},
                                    },
                                }
                            },
                            "image/png": binary,
                            "image/jpeg": binary,
                            "image/webp": binary,
                            "image/bmp": binary,
                            "image/gif": binary,
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The prediction (or predictions, for a batch)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"$ref": "#/components/schemas/Prediction"},
                                            {"$ref": "#/components/schemas/NumberPrediction"},
                                            {"$ref": "#/components/schemas/BatchPrediction"},
                                        ]
                                    }
                                }
                            },
                        },
                        "400": _error(
                            "Malformed JSON, a missing or wrong-typed field, bad base64, not an image"
                        ),
                        "413": _error("Body too large, or an image with too many pixels"),
                        "415": _error("Unsupported content type or image format"),
                        "429": _limited("requests"),
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "Store a correction: a drawing and the digit it really is",
                    "operationId": "feedback",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Correction"}},
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image", "label"],
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "label": {"type": "string", "pattern": "^([0-9]|not a digit)$"},
                                        "predicted": {"type": "integer", "minimum": 0, "maximum": 9},
                                        "position": {"type": "integer", "minimum": 0},
                                        "user": user,
                                    },
                                }
                            },
                        },
                    },
                    "responses": {
                        "201": {"description": "Stored", "content": {"application/json": {"schema": stored}}},
                        "200": {
                            "description": "Stored already: the same drawing and label from this client",
                            "content": {"application/json": {"schema": stored}},
                        },
                        "400": _error(
                            "Malformed JSON, a missing or wrong-typed field, bad base64, not an image, blank"
                        ),
                        "413": _error("Body too large, or an image with too many pixels"),
                        "415": _error("Unsupported content type or image format"),
                        "429": _limited("corrections"),
                    },
                }
            },
            "/users/{user}": {
                "delete": {
                    "summary": "Forget a user's handwriting: what they taught and their corrections",
                    "operationId": "forgetUser",
                    "parameters": [{"name": "user", "in": "path", "required": True, "schema": user}],
                    "responses": {
                        "200": {
                            "description": "Forgotten (also when there was nothing to forget)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["user", "removed"],
                                        "properties": {
                                            "user": {"type": "string"},
                                            "removed": {"type": "integer", "minimum": 0},
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("Not a UUID"),
                        "429": _limited("requests"),
                        "503": _error("The corrections database is unavailable: nothing was removed"),
                    },
                }
            },
            "/ready": {
                "get": {
                    "summary": "Readiness: the model is loaded and answers; the database's state is reported",
                    "operationId": "ready",
                    "responses": {
                        "200": {
                            "description": "Ready to read drawings (corrections may still be unavailable)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status", "database"],
                                        "properties": {
                                            "status": {"type": "string", "enum": ["ready"]},
                                            "model": {"type": "string", "nullable": True},
                                            "database": {
                                                "type": "string",
                                                "description": '"ok" or "unavailable: <why>"',
                                            },
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, summed over worker processes",
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "Liveness for load balancers",
                    "operationId": "health",
                    "responses": {
                        "200": {
                            "description": "The server is up and the model is loaded",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status"],
                                        "properties": {
                                            "status": {"type": "string", "enum": ["ok"]},
                                            "version": {"type": "string"},
                                            "model": {"type": "string", "nullable": True},
                                            "explanations": {"type": "string", "enum": ["ready"]},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/api/model": {
                "get": {
                    "summary": "The model card of the served model",
                    "operationId": "modelCard",
                    "responses": {
                        "200": {
                            "description": "Model card (version, data checksums, training, test accuracy)",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description",
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "SingleRequest": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": image_string,
                        "mode": mode,
                        "return_input": {
                            "type": "boolean",
                            "default": False,
                            "description": "Also return the 28x28 image the model saw",
                        },
                        "explain": {
                            "type": "boolean",
                            "default": False,
                            "description": "Also return a map of what the answer rests on (occlusion)",
                        },
                        "user": user,
                        "final": final,
                    },
                },
                "BatchRequest": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": image_string,
                            "minItems": 1,
                            "maxItems": max_batch,
                        },
                        "mode": mode,
                        "return_input": {"type": "boolean", "default": False},
                        "explain": {"type": "boolean", "default": False},
                        "user": user,
                        "final": final,
                    },
                },
                "Prediction": {
                    "type": "object",
                    "required": ["digit", "confidence", "probabilities", "blank"],
                    "properties": {
                        "digit": {"type": "integer", "minimum": 0, "maximum": 9, "nullable": True},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "probabilities": {
                            "type": "array",
                            "items": {"type": "number", "minimum": 0, "maximum": 1},
                            "minItems": 10,
                            "maxItems": 10,
                        },
                        "blank": {"type": "boolean"},
                        "rejected": {
                            "type": "boolean",
                            "description": "drawn, but not like a digit: digit is null",
                        },
                        "reason": {"type": "string", "nullable": True},
                        "input": grid,
                        "saliency": {**grid, "nullable": True},
                        "saliency_png": {
                            "type": "string",
                            "nullable": True,
                            "description": "PNG data URL: the input with the map",
                        },
                        **_taught("the answer"),
                        "looks_like_number": {
                            "type": "string",
                            "pattern": "^[0-9]+$",
                            "description": "with final: the drawing holds several digits side by side "
                            "(what mode=number reads)",
                        },
                    },
                },
                "NumberPrediction": {
                    "type": "object",
                    "required": ["number", "digits", "blank"],
                    "properties": {
                        "number": {"type": "string", "pattern": "^[0-9]*$"},
                        "blank": {"type": "boolean"},
                        "rejected": {
                            "type": "boolean",
                            "description": "drawn, but no piece looks like a digit",
                        },
                        "digits": {"type": "array", "items": {"$ref": "#/components/schemas/DigitInNumber"}},
                        "personalized": {
                            "type": "boolean",
                            "description": "with 'user': some digit differs from the model's because of "
                            "what this user taught",
                        },
                    },
                },
                "DigitInNumber": {
                    "type": "object",
                    "required": ["digit", "confidence", "probabilities", "box"],
                    "properties": {
                        "digit": {"type": "integer", "minimum": 0, "maximum": 9},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "probabilities": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": 10,
                            "maxItems": 10,
                        },
                        "box": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "minItems": 4,
                            "maxItems": 4,
                            "description": "left, top, right, bottom in the image's pixels",
                        },
                        "rejected": {
                            "type": "boolean",
                            "description": "the piece does not look like a digit (its top digit is given)",
                        },
                        **_taught("this digit"),
                    },
                },
                "BatchPrediction": {
                    "type": "object",
                    "required": ["predictions"],
                    "properties": {
                        "predictions": {
                            "type": "array",
                            "items": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Prediction"},
                                    {"$ref": "#/components/schemas/NumberPrediction"},
                                ]
                            },
                        }
                    },
                },
                "Correction": {
                    "type": "object",
                    "required": ["image", "label"],
                    "properties": {
                        "image": image_string,
                        "label": label,
                        "predicted": {"type": "integer", "minimum": 0, "maximum": 9, "nullable": True},
                        "position": {
                            "type": "integer",
                            "minimum": 0,
                            "nullable": True,
                            "description": "One digit of a number drawing (0 = leftmost): the server "
                            "cuts the drawing as POST /predict with mode=number does and stores that digit",
                        },
                        "user": user,
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            }
        },
    }
