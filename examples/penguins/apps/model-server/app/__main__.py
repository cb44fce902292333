"""`python -m app`: serve on $PORT (default 8000), so two colors can share a host network."""

import os

import uvicorn

uvicorn.run(
    "app.main:app", host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8000"))
)
