# Defaults for {{name}}; dib sources this file before every phase. Override any of them by
# exporting the variable before the build.
{{env_exports}}
