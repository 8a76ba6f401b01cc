# Defaults for the {{name}} operating system; dib sources this file before every phase.
export DISTRO_NAME=${DISTRO_NAME:-{{name}}}
export DIB_RELEASE=${DIB_RELEASE:-{{release}}}
export DIB_{{var_name}}_ROOTFS=${DIB_{{var_name}}_ROOTFS:-}
