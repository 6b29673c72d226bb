"""Run every `# name.py` snippet in docs/*.md and compare with the output block after it.

Usage: python docs/check_examples.py . [--write]   (from the repository root)
The output block is the next ```text block (for passes.py, the next three);
a block starting with `$ command` is run with that command. `...` lines in an
expected block match any number of lines. --write replaces full (non-excerpt)
output blocks with the actual output, in place.
"""
import difflib
import os
import re
import subprocess
import sys

repo = os.path.abspath(sys.argv[1])
write = '--write' in sys.argv
work = '/tmp/snip'
os.makedirs(work, exist_ok=True)
env = dict(os.environ, PYTHONPATH=repo)
env.pop('CODAX_DUMP', None)
SKIP = set()
PATCHED = {'sinc_demo.py'}       # runs in a copy of the repository with the sinc record added
SINC = ("# sinc(x) = sin(pi x) / (pi x); d/dx = (cos(pi x) - sinc(x)) / x, which is 0 at x = 0\n"
        "unary('sinc', 'g * xp.where(x == 0, 0, (xp.cos(xp.pi * x) - ans) / xp.where(x == 0, 1, x))')\n")


def patched_repo():
    dest = '/tmp/verify/patched'
    subprocess.run(f'rm -rf {dest} && mkdir -p {dest} && cd {repo} && git ls-files -co '
                   f'--exclude-standard | tar cf - -T - | tar xf - -C {dest}', shell=True, check=True)
    with open(f'{dest}/runtime/primitives/elementwise.py', 'a') as fh:
        fh.write(SINC)
    return dest
MULTI = {'passes.py': 3}
BLOCK = re.compile(r'^( *)```(\w*)\n(.*?)\n\1```', re.S | re.M)


def dedent(body, pad):
    return '\n'.join(l[len(pad):] for l in body.split('\n'))


def matches(expected, actual):
    exp = [l.rstrip() for l in expected.rstrip('\n').split('\n')]
    act = [l.rstrip() for l in actual.rstrip('\n').split('\n')]
    memo = {}

    def go(i, j):
        if (i, j) not in memo:
            if i == len(exp):
                r = j == len(act)
            elif exp[i].strip() == '...':
                r = any(go(i + 1, k) for k in range(j, len(act) + 1))
            else:
                r = j < len(act) and exp[i] == act[j] and go(i + 1, j + 1)
            memo[i, j] = r
        return memo[i, j]
    return go(0, 0)


failures = 0
for doc in sorted(os.listdir(os.path.join(repo, 'docs'))):
    path = os.path.join(repo, 'docs', doc)
    if not doc.endswith('.md'):
        continue
    text = open(path).read()
    found = list(BLOCK.finditer(text))
    replacements = []
    for k, m in enumerate(found):
        pad, lang, body = m.group(1), m.group(2), dedent(m.group(3), m.group(1))
        head = re.match(r'# (\w+\.py)\n', body)
        if lang != 'python' or not head:
            continue
        name = head.group(1)
        with open(os.path.join(work, name), 'w') as fh:
            fh.write(body + '\n')
        if name in SKIP:
            print(f'{doc}: {name}: skipped')
            continue
        outs = [f for f in found[k + 1:k + 1 + MULTI.get(name, 1)] if f.group(2) == 'text']
        if not outs:
            print(f'{doc}: {name}: no output block')
            continue
        expected = '\n\n'.join(dedent(f.group(3), f.group(1)) for f in outs)
        command = f'python {name} 2>&1'
        if expected.startswith('$ '):
            first, _, expected = expected.partition('\n')
            command = first[2:] + ('' if '2>&1' in first else ' 2>&1')
            if 'pytest' in command:
                continue
        run_env = dict(env, PYTHONPATH=patched_repo()) if name in PATCHED else env
        actual = subprocess.run(command, shell=True, cwd=work, env=run_env, capture_output=True,
                                text=True).stdout.rstrip('\n')
        actual = '\n'.join(l.rstrip() for l in actual.split('\n'))
        ok = matches(expected, actual)
        failures += not ok
        print(f'{doc}: {name}: {"ok" if ok else "MISMATCH"}')
        if not ok:
            excerpt = any(l.strip() == '...' for l in expected.split('\n'))
            if write and len(outs) == 1 and not excerpt:
                f = outs[0]
                keep = dedent(f.group(3), f.group(1)).split('\n')[0] + '\n' \
                    if f.group(3).lstrip().startswith('$ ') else ''
                new = keep + actual
                new = '\n'.join((f.group(1) + l) if l else l for l in new.split('\n'))
                replacements.append((f.start(3), f.end(3), new))
                print('    rewritten')
            else:
                print(''.join(difflib.unified_diff(expected.splitlines(True),
                                                   [l + '\n' for l in actual.split('\n')],
                                                   'doc', 'actual')))
    for start, end, new in sorted(replacements, reverse=True):
        text = text[:start] + new + text[end:]
    if replacements:
        open(path, 'w').write(text)
sys.exit(1 if failures else 0)
