"""The HTTP layer: request parsing, the API's resources and its OpenAPI description."""
