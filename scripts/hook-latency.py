import subprocess, time, os, sys, statistics, tempfile, json
vigil = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
fx = '/work/wt-hooks/fixtures/hooks/'
d = tempfile.mkdtemp(); os.chmod(d, 0o700); sig = os.path.join(d, 'signals'); os.mkdir(sig, 0o700)
env = dict(os.environ, VIGIL_SIGNALS=sig, VIGIL_AGENT='a', VIGIL_INCARNATION='1', VIGIL_RUN='r')
noenv = {k: v for k, v in os.environ.items() if not k.startswith('VIGIL_')}
small = open(fx + 'claude-permission-prompt.json', 'rb').read()
codex = open(fx + 'codex-agent-turn-complete.json').read()
big = b'x' * (10 << 20)
def run(args, data, e, open_stdin=False):
    t = time.perf_counter()
    p = subprocess.Popen([vigil, 'hook'] + args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e)
    if open_stdin:
        p.wait()
    else:
        try: p.stdin.write(data); p.stdin.close()
        except BrokenPipeError: pass
        p.wait()
    dt = (time.perf_counter() - t) * 1000
    try: p.stdin.close()
    except Exception: pass
    for f in os.listdir(sig): os.remove(os.path.join(sig, f))
    return dt
cases = [('claude payload on stdin', [], small, env, False), ('no env (no owner)', [], small, noenv, False),
         ('garbage on stdin', [], b'\x00garbage{', env, False), ('10 MB on stdin', [], big, env, False),
         ('codex argv, stdin open', [codex], b'', env, True)]
for name, a, data, e, o in cases:
    ts = sorted(run(a, data, e, o) for _ in range(n))
    print(f"{name:28s} n={n} median {statistics.median(ts):6.1f} ms  p95 {ts[int(n*0.95)-1]:6.1f} ms  max {ts[-1]:6.1f} ms")
