#!/usr/bin/env bash
# The demo: a throwaway CA, a local `openssl s_server`, and an HTTP/1.0 request
# made by a cleartext shell one-liner that tlsc turns into a TLS client.
# ucspi-tcp's tcpclient opens the TCP connection and leaves it on fds 6/7.
set -euo pipefail
cd "$(dirname "$0")/.."
# DEMO_VENV: run the commands of another installation (scripts/wheels.sh).
PATH="${DEMO_VENV:-$PWD/.venv}/bin:$PATH"
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=demo-ca -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj /CN=localhost -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
  -CAcreateserial -days 1 -extfile "$dir/ext" -out "$dir/server.pem" 2>/dev/null
port=${DEMO_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
openssl s_server -quiet -accept "127.0.0.1:$port" -www \
  -cert "$dir/server.pem" -key "$dir/server.key" >/dev/null 2>&1 &
server=$!
i=0
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 50 ] || { echo "s_server did not start" >&2; exit 1; }
  sleep 0.1
done
echo "\$ CAFILE=ca.pem tcpclient 127.0.0.1 $port tlsc -v 2 -k localhost sh -c '...'"
CAFILE="$dir/ca.pem" tcpclient -RHl0 127.0.0.1 "$port" \
  tlsc -v 2 -k localhost sh -c '
    echo "prog sees: $SSL_PROTOCOL $SSL_CIPHER peer=$SSL_PEER_CERT_SUBJECT sni=$SSL_TLS_SNI_SERVERNAME" >&2
    printf "GET / HTTP/1.0\r\n\r\n" >&7
    head -n 1 <&6 >&2'

# Both ends with this package alone: tlsd under tcpserver, tlsclient in front
# of a shell one-liner.
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEYFILE="$dir/server.key" CERTFILE="$dir/server.pem" tcpserver -q -RHl0 127.0.0.1 "$port2" \
  tlsd -- sh -c 'read -r line; echo "tlsd prog got \"$line\" over $SSL_PROTOCOL (SNI $SSL_TLS_SNI_SERVERNAME)"' &
server2=$!
trap 'kill $server $server2 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
i=0  # wait for the listener without connecting (a probe would be a failed TLS client)
until ! python3 -c "import socket,sys; socket.socket().bind(('127.0.0.1', int(sys.argv[1])))" "$port2" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 50 ] || { echo "tcpserver did not start" >&2; exit 1; }
  sleep 0.1
done
echo "\$ KEYFILE=server.key CERTFILE=server.pem tcpserver 127.0.0.1 $port2 tlsd -- sh -c '...' &"
echo "\$ CAFILE=ca.pem tlsclient localhost $port2 sh -c '...'"
CAFILE="$dir/ca.pem" tlsclient localhost "$port2" \
  sh -c 'echo "hello from tlsclient" >&7; head -n 1 <&6 >&2'
echo "demo: OK"
