#!/bin/sh
# Setup-latency prog: ask the server for one echoed line through the tunnel and
# hand the reply to the benchmark through FIFO.  Usage: echo.sh RFD WFD FIFO
printf 'ECHO hello\n' >&"$2"
read -r line <&"$1"
printf '%s\n' "$line" >"$3"
