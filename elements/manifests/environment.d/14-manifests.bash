# Defaults for the manifests element (sourced, not executed).
# DIB_MANIFEST_SAVE_DIR defaults to "<image name>.d" beside the image when
# the image name is known, and is otherwise empty (no copy is saved).
export DIB_MANIFEST_IMAGE_DIR=${DIB_MANIFEST_IMAGE_DIR:-/etc/dib-manifests}
export DIB_MANIFEST_SAVE_DIR=${DIB_MANIFEST_SAVE_DIR:-${IMAGE_NAME:+${IMAGE_NAME}.d}}
