#!/usr/bin/env python3
"""The table of BENCHMARKS.md's 'Issue-14 levers on deeprm': TensorBoard scalars and paired scores per run."""
import glob, json, os, re, sys, statistics as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
# usage: levers_table.py DIR  (DIR holds runs/<setting>_s<seed> and reports/<setting>_s<seed>)
root = sys.argv[1] if len(sys.argv) > 1 else 'runs/issue14'
rows = []
for run in sorted(glob.glob(f'{root}/runs/*')):
    name = os.path.basename(run)
    ea = EventAccumulator(run, size_guidance={'scalars': 0}); ea.Reload()
    def vals(tag):
        return [e.value for e in ea.Scalars(tag)] if tag in ea.Tags()['scalars'] else []
    kl, cf, ent, ff, ev = (vals('losses/approx_kl'), vals('losses/clipfrac'), vals('losses/entropy'),
                          vals('losses/forced_fraction'), vals('losses/explained_variance'))
    sps = vals('charts/SPS')
    rep = f'{root}/reports/{name}/report.md'
    vs = '—'
    if os.path.exists(rep):
        m = re.search(r'\| ckpt:best \| ([^|]*) \|', open(rep).read())
        vs = m.group(1).strip() if m else '?'
    mean = lambda x: st.mean(x) if x else float('nan')
    rows.append((name, vs, mean(kl), max(kl) if kl else float('nan'), mean(cf), ent[0] if ent else float('nan'),
                 ent[-1] if ent else float('nan'), mean(ff), ev[-1] if ev else float('nan'), sps[-1] if sps else 0, len(kl)))
print('| run | vs tetris (completion slowdown, paired, 95% CI) | approx_kl mean | approx_kl max | clipfrac mean | entropy first → last | forced share | expl. var (last) | sps | updates |')
print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
for r in rows:
    print(f'| {r[0]} | {r[1]} | {r[2]:.2e} | {r[3]:.2e} | {r[4]:.4f} | {r[5]:.3f} → {r[6]:.3f} | {r[7]:.2f} | {r[8]:.2f} | {r[9]:.0f} | {r[10]} |')
