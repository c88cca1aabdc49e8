#!/usr/bin/env python3
"""Builds data/mixed.fa and data/mixed_crlf.fa from the two committed genomes (stdlib only, deterministic).

Records (coordinates 0-based half-open in the source genome):
  lambda_0_3000     lambda_virus.fa [0, 3000), 60 bases per line, bases [1000, 1400) lower-cased (soft-masked)
  ecoli_100000_104000  ecoli536 [100000, 104000), 80 per line, [2000, 2200) replaced by N, IUPAC codes
                    R Y S W K M B D H V (upper) at offsets 10, 20, ..., 100 and r y s w k m b d h v (lower)
                    at 3010, 3020, ..., 3100, and a lower-case stretch [3500, 3600)
  short_lambda      lambda_virus.fa [40000, 40037), 37 bases on one line (shorter than any test window)
  ecoli_tail        ecoli536's last 2500 bases, 70 per line, starts with a run of 50 N (replacing its first 50
                    bases), has a description ("ecoli_tail E. coli 536 last 2500 bp, leading N run")
mixed_crlf.fa is the same text with CRLF line endings.
"""
import gzip, pathlib

here = pathlib.Path(__file__).resolve().parent

def read_fasta(text):
    lines = text.splitlines()
    return "".join(l.strip() for l in lines[1:] if not l.startswith(">"))

lam = read_fasta((here / "genomes/lambda_virus.fa").read_text())
eco = read_fasta(gzip.open(here / "genomes/ecoli536.fna.gz", "rt").read())

def wrap(name, seq, width):
    return ">" + name + "\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))

r1 = lam[0:3000]
r1 = r1[:1000] + r1[1000:1400].lower() + r1[1400:]

r2 = list(eco[100000:104000])
r2[2000:2200] = "N" * 200
for i, c in enumerate("RYSWKMBDHV"):
    r2[10 * (i + 1)] = c
    r2[3000 + 10 * (i + 1)] = c.lower()
r2[3500:3600] = [c.lower() for c in r2[3500:3600]]
r2 = "".join(r2)

r3 = lam[40000:40037]
r4 = "N" * 50 + eco[-2450:]

text = (wrap("lambda_0_3000", r1, 60) + wrap("ecoli_100000_104000", r2, 80) + wrap("short_lambda", r3, 60)
        + wrap("ecoli_tail E. coli 536 last 2500 bp, leading N run", r4, 70))
(here / "mixed.fa").write_bytes(text.encode())
(here / "mixed_crlf.fa").write_bytes(text.replace("\n", "\r\n").encode())
