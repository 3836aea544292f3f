# The attacker's and the legitimate client's sockets for tests/test_serve_attack.sh and bench (every wait bounded).
#   attack.py slow PORT N INTERVAL WATCH TOKEN MODEL KEYS CT: N connections from 127.0.0.2 that each send a
#     request's first line, then a header line every INTERVAL s, never the end; while they are open, the
#     legitimate client (127.0.0.1) asks /healthz and a prediction (times printed); then how many of the slow
#     connections the server still holds, every 0.25 s until WATCH s after the first one opened
#   attack.py raw PORT NAME BOUND: one malformed request; prints the status line, "closed" or "HANG"
#   attack.py hold PORT TOKEN PATH LENGTH SECONDS: a POST's headers and a few bytes of its body, then nothing
#   attack.py stream PORT BOUND: binary garbage without a line end, 64 bytes every 0.1 s for at most BOUND s;
#     prints "closed" and when the server closed, or "HANG"
import http.client, random, select, socket, sys, time

def legit(port, method, path, token=None, body=None):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=10, source_address=('127.0.0.1', 0))
    t0 = time.time()
    h = {'Authorization': 'Bearer ' + token} if token else {}
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, time.time() - t0

def open_count(socks):
    """How many are still open: not closed or reset by the server (a read that would block)."""
    n = 0
    for s in socks:
        if s is None:
            continue
        try:
            r, _, _ = select.select([s], [], [], 0)
            if not r:
                n += 1
            elif s.recv(1, socket.MSG_PEEK):
                n += 1
        except OSError:
            pass
    return n

def slow(port, n, interval, watch, token, model, keys, ct):
    socks = []
    t_first = time.time()  # the first connection's start: the deadline counts from it
    for i in range(n):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.bind(('127.0.0.2', 0))
            s.connect(('127.0.0.1', port))
            s.sendall(b'GET /v1/models HTTP/1.1\r\nHost: x\r\n')
            socks.append(s)
        except OSError:
            s.close()
    time.sleep(1)
    print('slow_connected', len(socks))
    print('slow_open', open_count(socks))
    st, dt = legit(port, 'GET', '/healthz')
    print('healthz', st, '%.4f' % dt)
    body = open(ct, 'rb').read()
    st, dt = legit(port, 'POST', '/v1/models/%s/predict?keys=%s' % (model, keys), token, body)
    print('predict', st, '%.4f' % dt)
    sys.stdout.flush()
    t0 = time.time()
    last = t0
    while time.time() - t_first < watch:
        time.sleep(0.25)
        if time.time() - last >= interval:
            last = time.time()
            for s in socks:
                try:
                    s.sendall(b'X-Slow: 1\r\n')
                except OSError:
                    pass
        print('open_at %.2f %d' % (time.time() - t_first, open_count(socks)))
        sys.stdout.flush()
    for s in socks:
        s.close()

CASES = {
    'args500': b'GET /v1/models?' + b'&'.join(b'a%d=1' % i for i in range(500)) + b' HTTP/1.1\r\nHost: x\r\n\r\n',
    'args20': b'GET /v1/models?' + b'&'.join(b'a%d=1' % i for i in range(20)) + b' HTTP/1.1\r\nHost: x\r\n\r\n',
    'garbage': b'garbage garbage\r\n\r\n',
    'garbage_binary': b'\x00\x01\x02 binary garbage without a line end',
    'te_gzip': b'POST /v1/keys HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc',
    'two_lengths': b'POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde',
    'length_and_chunked': b'POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'no_length': b'POST /v1/keys HTTP/1.1\r\nHost: x\r\n\r\nabcde',
    'long_header': b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ' + b'a' * 40000 + b'\r\n\r\n',
    'many_headers': b'GET /healthz HTTP/1.1\r\nHost: x\r\n' + b''.join(b'X-%d: v\r\n' % i for i in range(2000)) + b'\r\n',
    'long_url': b'GET /' + b'a' * 40000 + b' HTTP/1.1\r\nHost: x\r\n\r\n',
}

def raw(port, name, bound):
    s = socket.socket()
    s.settimeout(bound)
    s.connect(('127.0.0.1', port))
    t0 = time.time()
    data = b''
    try:
        s.sendall(CASES[name])
        while b'\r\n' not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
        line = data.split(b'\r\n')[0].decode(errors='replace') if data else 'closed'
    except socket.timeout:
        line = 'HANG'
    except OSError:
        line = 'closed'
    s.close()
    print('%s %.2f' % (line, time.time() - t0))

def stream(port, bound):
    """Binary garbage without a line end, 64 bytes every 0.1 s (at most bound s): the time the server closes."""
    s = socket.socket()
    s.settimeout(1)
    s.connect(('127.0.0.1', port))
    t0 = time.time()
    line = 'HANG'
    rng = random.Random(21)
    while time.time() - t0 < bound:
        chunk = bytes(b for b in (rng.randrange(256) for _ in range(64)) if b not in (10, 13))
        try:
            s.sendall(chunk)
            s.setblocking(False)
            try:
                if s.recv(4096) == b'':
                    line = 'closed'
                    break
            except BlockingIOError:
                pass
            s.setblocking(True)
        except OSError:
            line = 'closed'
            break
        time.sleep(0.1)
    s.close()
    print('%s %.2f' % (line, time.time() - t0))

def hold(port, token, path, length, seconds):
    s = socket.socket()
    s.settimeout(5)
    s.connect(('127.0.0.1', port))
    s.sendall(('POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\nab'
               % (path, token, length)).encode())
    print('holding')
    sys.stdout.flush()
    time.sleep(seconds)
    s.close()

if __name__ == '__main__':
    a = sys.argv
    if a[1] == 'slow':
        slow(int(a[2]), int(a[3]), float(a[4]), float(a[5]), a[6], a[7], a[8], a[9])
    elif a[1] == 'raw':
        raw(int(a[2]), a[3], float(a[4]))
    elif a[1] == 'stream':
        stream(int(a[2]), float(a[3]))
    elif a[1] == 'hold':
        hold(int(a[2]), a[3], a[4], int(a[5]), float(a[6]))
