# Init system of the image (sourced, not executed). Operating-system
# elements set their own value earlier; systemd is the fallback.
export DIB_INIT_SYSTEM=${DIB_INIT_SYSTEM:-systemd}
