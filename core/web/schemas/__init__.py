"""Each request body of the API, declared once as a msgspec Struct: the resources decode
bodies with it (``decoding.decode``) and /openapi.json describes them from it
(``jsonschema.components``)."""
