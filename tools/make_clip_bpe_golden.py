#!/usr/bin/python3
"""Writes tests/data/golden/clip_bpe_unicode.tsv: CLIP BPE ids of non-Latin texts, from a
small Python tokenizer written here from the published algorithm (open_clip's
SimpleTokenizer: bytes_to_unicode, the first 48,894 merges, lowest-rank-first merging) with
\\p{L}/\\p{N} taken from Python's unicodedata. The `regex` and `ftfy` modules are not on
Debian's python3, so the texts are chosen to be NFC with nothing for ftfy to change.

    /usr/bin/python3 tools/make_clip_bpe_golden.py \\
        ../shared/reference/clip_bpe/bpe_simple_vocab_16e6.txt.gz > tests/data/golden/clip_bpe_unicode.tsv
"""
import gzip
import html
import sys
import unicodedata

TEXTS = [
    "Καλημέρα κόσμε",
    "Привет, мир! Ёлка",
    "東京タワーの夜景",
    "서울의 밤",
    "🐶🐱 party 🎉🎉",
    "x² + y³ = ½",
    "٣٤٥ apples",
    "ΣΟΦΙΑ ΟΔΟΣ",
    "straße über Ölfeld",
    "&lt;b&gt;bold&lt;/b&gt; &amp;amp; co",
    "tab\there\u00a0nbsp",
    "the cat's toys, they're here; we'll see.",
]


def byte_table():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def cat(ch):
    return unicodedata.category(ch)[0]


def split(text):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        m = next((s for s in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d") if text.startswith(s, i)),
                 None)
        if m:
            out.append(m)
            i += len(m)
        elif cat(c) == 'L':
            j = i
            while j < len(text) and cat(text[j]) == 'L':
                j += 1
            out.append(text[i:j])
            i = j
        elif cat(c) == 'N':
            out.append(c)
            i += 1
        elif c.isspace():
            i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and cat(text[j]) not in 'LN':
                j += 1
            out.append(text[i:j])
            i = j
    return out


def main():
    lines = gzip.open(sys.argv[1]).read().decode('utf-8').split('\n')[1:49152 - 256 - 2 + 1]
    merges = [tuple(l.split()) for l in lines]
    enc = byte_table()
    vocab = list(enc.values())
    vocab = vocab + [v + '</w>' for v in vocab] + [''.join(m) for m in merges]
    vocab += ['<start_of_text>', '<end_of_text>']
    ids = {t: i for i, t in enumerate(vocab)}
    rank = {m: i for i, m in enumerate(merges)}

    def bpe(token):
        word = list(token[:-1]) + [token[-1] + '</w>']
        while len(word) > 1:
            pairs = [(rank.get((a, b), 1 << 30), a, b) for a, b in zip(word, word[1:])]
            r, a, b = min(pairs)
            if r == 1 << 30:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    print('# CLIP BPE ids (without start/end tokens) from tools/make_clip_bpe_golden.py')
    for text in TEXTS:
        clean = ' '.join(html.unescape(html.unescape(text)).split()).lower()
        out = []
        for piece in split(clean):
            out += [ids[t] for t in bpe(''.join(enc[b] for b in piece.encode('utf-8')))]
        esc = text.replace('\\', '\\\\').replace('\t', '\\t')
        print(esc + '\t' + ' '.join(map(str, out)))


main()
