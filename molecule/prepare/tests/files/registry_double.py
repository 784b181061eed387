"""Test double of a container registry: TLS on the port given, every request answered 404 MANIFEST_UNKNOWN.

Run inside a test container by test_containerd_system.py; the certificate comes from the
scenario's test CA (prepare.yml).
"""
import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
        self.send_response(404)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    do_HEAD = do_GET


server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/root/regtest/registry.crt", "/root/regtest/registry.key")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
