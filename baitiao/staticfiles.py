"""The production static files storage: WhiteNoise's compressed manifest, without source maps.

Vendored minified libraries (``static/vendor/``) end with a ``sourceMappingURL``
comment naming a ``.map`` file we do not ship. Django's manifest storage rewrites
those references to hashed names and fails ``collectstatic`` when the map is
missing; a missing map only costs browser developer tools their original
sources, so the references are left as they are.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns):
    return tuple(
        (extension, tuple(p for p in rules if "sourceMappingURL" not in (p if isinstance(p, str) else p[0])))
        for extension, rules in patterns
    )


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names and gzip/brotli copies; ``url()`` and ``@import`` rewritten, source maps not."""

    patterns = _without_source_maps(CompressedManifestStaticFilesStorage.patterns)
