/* The capture reader's per-record loops in C: the pcap record walk, the pcapng packet-block walk and the
 * header decoding of segverify.capture.decode, fused so that each record is decoded as it is found.
 *
 * Why C: the record walk is a chain of dependent loads (each length says where the next record is) and
 * Python pays ~0.3 us per record for it; numba would do, but loading it costs ~0.5 s and 100 MB per
 * process. This module loads in a millisecond. It is optional: without a compiler the package installs
 * without it and the numpy passes run (segverify/capture/native.py chooses). Both give identical results;
 * the tests compare them on the corpus and on random bytes.
 *
 * Every read is checked against the buffer's length (a capture is hostile input). Every function releases
 * the GIL while it loops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#pragma pack(push, 1)
typedef struct {
    int64_t ts;
    int64_t pos;
    uint32_t caplen;
    uint32_t wirelen;
    int32_t ifindex;
    uint16_t linktype;
    int32_t vlan;
    uint8_t family;
    uint8_t proto;
    uint32_t src4;
    uint32_t dst4;
    uint64_t src6hi;
    uint64_t src6lo;
    uint64_t dst6hi;
    uint64_t dst6lo;
    uint16_t sport;
    uint16_t dport;
    uint16_t tcp_flags;
    uint32_t seq;
    uint32_t ack;
    uint8_t icmp_type;
    uint8_t icmp_code;
    uint32_t ip_len;
    uint32_t ip_id;
    uint16_t frag_off;
    uint8_t frag;
    uint16_t l3_off;
    uint32_t pay_off;
    uint32_t pay_len;
    uint8_t status;
} Rec;
#pragma pack(pop)

#define ETH 1
#define SLL 113
#define SLL2 276
#define LT_IPV4 228
#define LT_IPV6 229
#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ST_NOT_IP 1
#define ST_IP_BAD 2
#define ST_L4_TRUNC 4
#define ST_NO_PORTS 32
#define FRAG_IS_FRAGMENT 1
#define FRAG_FIRST 2
#define FRAG_MORE 4
#define PREFETCH 4096

typedef struct {
    const uint8_t *p;
    int64_t n;
} Buf;

static inline int64_t u8(Buf b, int64_t i) { return (i >= 0 && i < b.n) ? (int64_t)b.p[i] : 0; }
static inline int64_t be16(Buf b, int64_t i) { return (u8(b, i) << 8) | u8(b, i + 1); }
static inline int64_t be32(Buf b, int64_t i) { return (be16(b, i) << 16) | be16(b, i + 2); }
static inline uint64_t be64(Buf b, int64_t i) { return ((uint64_t)be32(b, i) << 32) | (uint64_t)be32(b, i + 4); }
static inline int64_t u32(Buf b, int64_t i, int big) {
    if (big) return be32(b, i);
    return u8(b, i) | (u8(b, i + 1) << 8) | (u8(b, i + 2) << 16) | (u8(b, i + 3) << 24);
}
/* Prefetch the cache lines from *pf up to (not past the buffer) target: the record walk is a chain of
 * dependent loads the hardware cannot run ahead of, so the loops ask for the bytes ahead themselves. */
static inline void prefetch_to(Buf b, int64_t *pf, int64_t target) {
    if (target > b.n) target = b.n;
    for (; *pf < target; *pf += 64) __builtin_prefetch(b.p + *pf, 0, 3);
}
static inline int tpid(int64_t v) { return v == 0x8100 || v == 0x88A8 || v == 0x9100; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* One frame (at o, c bytes captured) into r: what decode._decode_vectorised computes for it. Returns 1
 * when the frame is left to the scalar decoder, as the vectorised pass leaves it. */
static int decode_one(Buf b, int64_t o, int64_t c, int64_t ltype, Rec *r, const uint8_t *ext6) {
    int slow = 0, known = 1;
    int64_t vlan = -1, etype = 0, l3 = 0;
    if (ltype == ETH) {
        int64_t et_eth = be16(b, o + 12);
        if (tpid(et_eth)) {
            int64_t et1 = be16(b, o + 16);
            if (tpid(et1)) {
                int64_t et2 = be16(b, o + 20);
                slow = tpid(et2) && c >= 22; /* never decide on bytes past the capture */
                etype = et2;
                l3 = 22;
            } else {
                etype = et1;
                l3 = 18;
            }
            if (c >= 18) vlan = be16(b, o + 14) & 0xFFF;
        } else {
            etype = et_eth;
            l3 = 14;
        }
    } else if (ltype == SLL) {
        etype = be16(b, o + 14);
        l3 = 16;
        slow = tpid(etype) && c >= l3;
    } else if (ltype == SLL2) {
        etype = be16(b, o);
        l3 = 20;
        slow = tpid(etype) && c >= l3;
    } else if (ltype == 12 || ltype == 14 || ltype == 101 || ltype == LT_IPV4 || ltype == LT_IPV6) {
        int64_t ver0 = u8(b, o) >> 4;
        etype = ver0 == 4 ? ETH_IPV4 : (ver0 == 6 ? ETH_IPV6 : 0);
        if ((ltype == LT_IPV4 && ver0 != 4) || (ltype == LT_IPV6 && ver0 != 6)) etype = 0;
    } else {
        known = 0;
        slow = 1;
    }
    int linkok = c >= max64(l3, 1) && !slow;
    r->vlan = (int32_t)vlan;
    /* network layer */
    int64_t g = o + l3;
    int64_t first = u8(b, g), ver = first >> 4;
    int want4 = linkok && etype == ETH_IPV4, want6 = linkok && etype == ETH_IPV6;
    int64_t ihl4 = (first & 15) * 4, tot = be16(b, g + 2);
    int ok4 = want4 && ver == 4 && ihl4 >= 20 && c >= l3 + ihl4 && (tot == 0 || tot >= ihl4);
    int64_t plen6 = 0, nh6 = 0;
    int ok6 = 0, ex6 = 0;
    if (want6) {
        plen6 = be16(b, g + 4);
        nh6 = u8(b, g + 6);
        ok6 = ver == 6 && c >= l3 + 40;
        ex6 = ok6 && ext6[nh6 & 255];
        slow = slow || ex6;
        ok6 = ok6 && !ex6;
    }
    int st = 0;
    if (linkok && !want4 && !want6) st |= ST_NOT_IP;
    if ((want4 && !ok4) || (want6 && !ok6 && !ex6)) st |= ST_IP_BAD;
    if (!linkok && !slow) st |= ST_NOT_IP;
    int64_t proto = ok4 ? u8(b, g + 9) : (ok6 ? nh6 : 0);
    int64_t fr = be16(b, g + 6);
    int64_t fo = ok4 ? (fr & 0x1FFF) : 0;
    int mf = ok4 && (fr & 0x2000) != 0;
    int isfrag = mf || fo != 0;
    int64_t iplen = ok4 ? (tot == 0 ? c - l3 : tot) : (ok6 ? plen6 + 40 : 0);
    int64_t iplen_eff = (ok6 && plen6 == 0) ? c - l3 : iplen;
    int64_t l4 = l3 + (ok4 ? ihl4 : 40);
    int ipok = ok4 || ok6;
    r->family = ok4 ? 4 : (ok6 ? 6 : 0);
    r->proto = (uint8_t)proto;
    r->l3_off = (uint16_t)(ipok ? l3 : 0);
    r->ip_len = (uint32_t)iplen;
    r->ip_id = (uint32_t)(ok4 ? be16(b, g + 4) : 0);
    int fbits = 0;
    if (isfrag) fbits = FRAG_IS_FRAGMENT | (fo == 0 ? FRAG_FIRST : 0);
    if (mf) fbits |= FRAG_MORE;
    r->frag = (uint8_t)fbits;
    r->frag_off = (uint16_t)fo;
    r->src4 = (uint32_t)(ok4 ? be32(b, g + 12) : 0);
    r->dst4 = (uint32_t)(ok4 ? be32(b, g + 16) : 0);
    r->src6hi = ok6 ? be64(b, g + 8) : 0;
    r->src6lo = ok6 ? be64(b, g + 16) : 0;
    r->dst6hi = ok6 ? be64(b, g + 24) : 0;
    r->dst6lo = ok6 ? be64(b, g + 32) : 0;
    /* transport layer (not for later fragments) */
    if (isfrag && fo != 0) ipok = 0;
    int64_t avail = min64(c, l3 + iplen_eff) - l4;
    int64_t t = o + (ipok ? l4 : 0);
    int tcp = ipok && proto == 6, udp = ipok && proto == 17;
    int icmp = ipok && ((proto == 1 && ok4) || (proto == 58 && ok6));
    int ports = (tcp || udp) && avail >= 4;
    r->sport = (uint16_t)(ports ? be16(b, t) : 0);
    r->dport = (uint16_t)(ports ? be16(b, t + 2) : 0);
    int64_t doff = (u8(b, t + 12) >> 4) * 4;
    int tfull = tcp && avail >= 20 && doff >= 20 && doff <= avail;
    r->tcp_flags = (uint16_t)(tfull ? (be16(b, t + 12) & 0x1FF) : 0);
    r->seq = (uint32_t)(tfull ? be32(b, t + 4) : 0);
    r->ack = (uint32_t)(tfull ? be32(b, t + 8) : 0);
    int ufull = udp && avail >= 8;
    if (tfull) {
        r->pay_off = (uint32_t)(l4 + doff);
        r->pay_len = (uint32_t)max64(avail - doff, 0);
    } else if (ufull) {
        r->pay_off = (uint32_t)(l4 + 8);
        r->pay_len = (uint32_t)max64(min64(be16(b, t + 4) - 8, avail - 8), 0);
    } else {
        r->pay_off = 0;
        r->pay_len = 0;
    }
    int iok = icmp && avail >= 2;
    r->icmp_type = (uint8_t)(iok ? u8(b, t) : 0);
    r->icmp_code = (uint8_t)(iok ? u8(b, t + 1) : 0);
    if ((tcp && !tfull) || (udp && !ufull) || (icmp && !iok)) st |= ST_L4_TRUNC;
    if ((tcp || udp) && !ports) st |= ST_NO_PORTS;
    r->status = (uint8_t)st;
    return slow || !known;
}

static int need(Py_buffer *v, Py_ssize_t bytes, const char *what) {
    if (v->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, %zd needed", what, v->len, bytes);
        return 0;
    }
    return 1;
}

/* pcap_fused(buf, pos, end, big, tsmul, base, linktype, caplim, out, slow, ext6)
 *   -> (records, stop offset, why, seconds of the last record)
 * why: 0 end of buffer or a record overrunning it, 1 an impossible length at the stop offset, 2 out full. */
static PyObject *pcap_fused(PyObject *self, PyObject *args) {
    Py_buffer buf, out, slow, ext6;
    Py_ssize_t pos, end;
    int big, linktype;
    long long tsmul, base, caplim;
    if (!PyArg_ParseTuple(args, "y*nnpLLiLw*w*y*", &buf, &pos, &end, &big, &tsmul, &base, &linktype, &caplim,
                          &out, &slow, &ext6))
        return NULL;
    PyObject *res = NULL;
    Py_ssize_t room = out.len / (Py_ssize_t)sizeof(Rec);
    if (!need(&slow, room, "slow") || !need(&ext6, 256, "ext6")) goto done;
    if (end > buf.len) end = buf.len;
    Buf b = {(const uint8_t *)buf.buf, buf.len};
    Rec *rec = (Rec *)out.buf;
    uint8_t *sl = (uint8_t *)slow.buf;
    const uint8_t *e6 = (const uint8_t *)ext6.buf;
    int64_t n = 0, off = pos, pf = pos, last_sec = -1;
    int why = 0;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        if (off < 0 || off + 16 > end) break;
        if (n >= room) { why = 2; break; }
        int64_t il = u32(b, off + 8, big), orig = u32(b, off + 12, big);
        if (il > caplim || il > orig) { why = 1; break; }
        int64_t nxt = off + 16 + il;
        if (nxt > end) break;
        prefetch_to(b, &pf, nxt + PREFETCH);
        int64_t sec = u32(b, off, big);
        Rec *r = rec + n;
        r->ts = sec * 1000000000LL + u32(b, off + 4, big) * tsmul;
        r->pos = base + off + 16;
        r->caplen = (uint32_t)il;
        r->wirelen = (uint32_t)orig;
        r->ifindex = 0;
        r->linktype = (uint16_t)linktype;
        sl[n] = (uint8_t)decode_one(b, off + 16, il, linktype, r, e6);
        last_sec = sec;
        n++;
        off = nxt;
    }
    Py_END_ALLOW_THREADS
    res = Py_BuildValue("LLiL", (long long)n, (long long)off, why, (long long)last_sec);
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&out);
    PyBuffer_Release(&slow);
    PyBuffer_Release(&ext6);
    return res;
}

/* decode(buf, off, cap, lt, out, slow, ext6): decode_one over a run of frames (int64 off, cap, lt). */
static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer buf, off, cap, lt, out, slow, ext6;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*y*", &buf, &off, &cap, &lt, &out, &slow, &ext6)) return NULL;
    PyObject *res = NULL;
    Py_ssize_t n = off.len / 8;
    if (!need(&cap, n * 8, "cap") || !need(&lt, n * 8, "lt") || !need(&out, n * (Py_ssize_t)sizeof(Rec), "out") ||
        !need(&slow, n, "slow") || !need(&ext6, 256, "ext6"))
        goto done;
    Buf b = {(const uint8_t *)buf.buf, buf.len};
    const int64_t *o = (const int64_t *)off.buf, *c = (const int64_t *)cap.buf, *l = (const int64_t *)lt.buf;
    Rec *rec = (Rec *)out.buf;
    uint8_t *sl = (uint8_t *)slow.buf;
    const uint8_t *e6 = (const uint8_t *)ext6.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 8 < n && o[i + 8] >= 0 && o[i + 8] < b.n) __builtin_prefetch(b.p + o[i + 8], 0, 3);
        sl[i] = (uint8_t)decode_one(b, o[i], c[i], l[i], rec + i, e6);
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    res = Py_None;
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&off);
    PyBuffer_Release(&cap);
    PyBuffer_Release(&lt);
    PyBuffer_Release(&out);
    PyBuffer_Release(&slow);
    PyBuffer_Release(&ext6);
    return res;
}

/* pcap_walk(buf, pos, end, big, o, sec, frac, incl, orig) -> (records, stop offset): the walk alone. */
static PyObject *pcap_walk(PyObject *self, PyObject *args) {
    Py_buffer buf, vo, vsec, vfrac, vincl, vorig;
    Py_ssize_t pos, end;
    int big;
    if (!PyArg_ParseTuple(args, "y*nnpw*w*w*w*w*", &buf, &pos, &end, &big, &vo, &vsec, &vfrac, &vincl, &vorig))
        return NULL;
    PyObject *res = NULL;
    Py_ssize_t room = vo.len / 8;
    if (!need(&vsec, room * 8, "sec") || !need(&vfrac, room * 8, "frac") || !need(&vincl, room * 8, "incl") ||
        !need(&vorig, room * 8, "orig"))
        goto done;
    if (end > buf.len) end = buf.len;
    Buf b = {(const uint8_t *)buf.buf, buf.len};
    int64_t *o = (int64_t *)vo.buf, *sec = (int64_t *)vsec.buf, *frac = (int64_t *)vfrac.buf;
    int64_t *incl = (int64_t *)vincl.buf, *orig = (int64_t *)vorig.buf;
    int64_t n = 0, off = pos, pf = pos;
    Py_BEGIN_ALLOW_THREADS
    while (off >= 0 && off + 16 <= end && n < room) {
        int64_t il = u32(b, off + 8, big), nxt = off + 16 + il;
        if (nxt > end) break;
        prefetch_to(b, &pf, nxt + PREFETCH);
        o[n] = off;
        sec[n] = u32(b, off, big);
        frac[n] = u32(b, off + 4, big);
        incl[n] = il;
        orig[n] = u32(b, off + 12, big);
        n++;
        off = nxt;
    }
    Py_END_ALLOW_THREADS
    res = Py_BuildValue("LL", (long long)n, (long long)off);
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&vo);
    PyBuffer_Release(&vsec);
    PyBuffer_Release(&vfrac);
    PyBuffer_Release(&vincl);
    PyBuffer_Release(&vorig);
    return res;
}

/* pcapng_walk(buf, pos, end, big, max_block, o) -> (blocks, stop offset): packet blocks (2, 3, 6) only. */
static PyObject *pcapng_walk(PyObject *self, PyObject *args) {
    Py_buffer buf, vo;
    Py_ssize_t pos, end;
    int big;
    long long max_block;
    if (!PyArg_ParseTuple(args, "y*nnpLw*", &buf, &pos, &end, &big, &max_block, &vo)) return NULL;
    if (end > buf.len) end = buf.len;
    Buf b = {(const uint8_t *)buf.buf, buf.len};
    int64_t *o = (int64_t *)vo.buf;
    Py_ssize_t room = vo.len / 8;
    int64_t n = 0, off = pos, pf = pos;
    Py_BEGIN_ALLOW_THREADS
    while (off >= 0 && off + 12 <= end && n < room) {
        int64_t btype = u32(b, off, big), blen = u32(b, off + 4, big), nxt = off + blen;
        if (nxt > end || blen < 12 || (blen & 3) || blen > max_block || !(btype == 2 || btype == 3 || btype == 6))
            break;
        prefetch_to(b, &pf, nxt + PREFETCH);
        o[n++] = off;
        off = nxt;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&vo);
    return Py_BuildValue("LL", (long long)n, (long long)off);
}

/* select_pairs(recs, starts, bits, roles6, even, kept) -> (how many kept, fragment)
 *
 * The harvest's candidate test (segverify.capture.collect.Harvest.select) in one pass. Each address has
 * role bits: an IPv4 address those of the piece of the sorted ``starts`` (int64, first 0) that holds it, in
 * ``bits`` (uint64); an IPv6 address those in ``roles6`` (uint64, source and destination of each IPv6
 * record in order; computed by the caller, IPv6 being rare). Set pair i is bits 2i (side A) and 2i+1 (side B); ``even`` has
 * the A bits. A record is a candidate when its source is in A_i and its destination in B_i, or the reverse;
 * the TCP and UDP candidates are copied to ``kept`` (room for every record), in order. ``fragment``: some
 * candidate is an IP fragment (the caller gives up). */
static inline uint64_t v4_roles(const int64_t *st, const uint64_t *bits, Py_ssize_t m, int64_t a) {
    Py_ssize_t lo = 0, hi = m; /* the last start <= a: starts[0] is 0 */
    while (hi - lo > 1) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (st[mid] <= a) lo = mid; else hi = mid;
    }
    return bits[lo];
}

static PyObject *select_pairs(PyObject *self, PyObject *args) {
    Py_buffer recs, starts, bits, roles6, kept;
    unsigned long long even;
    if (!PyArg_ParseTuple(args, "y*y*y*y*Kw*", &recs, &starts, &bits, &roles6, &even, &kept)) return NULL;
    PyObject *res = NULL;
    Py_ssize_t n = recs.len / (Py_ssize_t)sizeof(Rec), m = starts.len / 8;
    Py_ssize_t n6 = roles6.len / 16, j = 0;
    if (m < 1 || !need(&bits, m * 8, "bits") ||
        !need(&kept, n * (Py_ssize_t)sizeof(Rec), "kept"))
        goto done;
    const Rec *r = (const Rec *)recs.buf;
    const int64_t *st = (const int64_t *)starts.buf;
    const uint64_t *bt = (const uint64_t *)bits.buf, *r6 = (const uint64_t *)roles6.buf;
    Rec *out = (Rec *)kept.buf;
    Py_ssize_t k = 0;
    int fragment = 0;
    uint64_t ev = (uint64_t)even;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t rs, rd;
        if (r[i].family == 4) {
            rs = v4_roles(st, bt, m, (int64_t)r[i].src4);
            rd = v4_roles(st, bt, m, (int64_t)r[i].dst4);
        } else if (r[i].family == 6) {
            if (j >= n6) { /* fewer role pairs than IPv6 records: the caller's mistake */
                fragment = -1;
                break;
            }
            rs = r6[2 * j];
            rd = r6[2 * j + 1];
            j++;
        } else {
            continue;
        }
        if (!(((rs & ev) & (rd >> 1)) | ((rd & ev) & (rs >> 1)))) continue;
        if (r[i].frag & FRAG_IS_FRAGMENT) fragment = 1;
        if (r[i].proto == 6 || r[i].proto == 17) out[k++] = r[i];
    }
    Py_END_ALLOW_THREADS
    if (fragment < 0)
        PyErr_SetString(PyExc_ValueError, "select_pairs: roles6 has fewer rows than there are IPv6 records");
    else
        res = Py_BuildValue("ni", k, fragment);
done:
    PyBuffer_Release(&recs);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&bits);
    PyBuffer_Release(&roles6);
    PyBuffer_Release(&kept);
    return res;
}

/* quiet_drop(recs, hashes, index, thash, tpairs, drop) -> how many dropped
 *
 * The harvest's bulk drop test (segverify.capture.collect.Quiet.drop) in one pass. The tables of endpoint
 * pairs whose packets are no longer needed lie back to back: ``index`` (int64) has one row (start, count,
 * protocol, kind) per table; ``thash`` (uint64) each table's pair hashes, sorted; ``tpairs`` (uint64, 8 per
 * pair) the pair itself as (family, high, low, port) twice, the sender first for kind 0. Kinds: 0 one
 * sender's packets without SYN, FIN or RST; 1 both senders' (every UDP packet); 2 those with no payload
 * either. A record (``hashes``: its pair hash) is dropped when a table of its protocol holds its hash and
 * its ends match the pair field by field (a hash collision drops nothing); never an IP fragment.
 * ``drop`` (uint8, one per record) is set to 0 or 1. */
#define TCP_CONTROL (0x02 | 0x01 | 0x04) /* SYN FIN RST */

static inline int same_end(const uint64_t *e, uint64_t fam, uint64_t hi, uint64_t lo, uint64_t port) {
    return e[0] == fam && e[1] == hi && e[2] == lo && e[3] == port;
}

static PyObject *quiet_drop(PyObject *self, PyObject *args) {
    Py_buffer recs, hashes, index, thash, tpairs, drop;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*", &recs, &hashes, &index, &thash, &tpairs, &drop)) return NULL;
    PyObject *res = NULL;
    Py_ssize_t n = recs.len / (Py_ssize_t)sizeof(Rec), nt = index.len / 32, nh = thash.len / 8;
    if (!need(&hashes, n * 8, "hashes") || !need(&drop, n, "drop") || !need(&tpairs, nh * 64, "tpairs")) goto done;
    const int64_t *ix = (const int64_t *)index.buf;
    for (Py_ssize_t t = 0; t < nt; t++) {
        if (ix[4 * t] < 0 || ix[4 * t + 1] < 0 || ix[4 * t] + ix[4 * t + 1] > nh) {
            PyErr_SetString(PyExc_ValueError, "quiet_drop: a table lies outside thash");
            goto done;
        }
    }
    const Rec *r = (const Rec *)recs.buf;
    const uint64_t *h = (const uint64_t *)hashes.buf, *th = (const uint64_t *)thash.buf;
    const uint64_t *tp = (const uint64_t *)tpairs.buf;
    uint8_t *out = (uint8_t *)drop.buf;
    Py_ssize_t dropped = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const Rec *q = r + i;
        out[i] = 0;
        if (q->frag & FRAG_IS_FRAGMENT) continue;
        int v6 = q->family == 6;
        uint64_t fam = q->family;
        uint64_t shi = v6 ? q->src6hi : 0, slo = v6 ? q->src6lo : q->src4;
        uint64_t dhi = v6 ? q->dst6hi : 0, dlo = v6 ? q->dst6lo : q->dst4;
        for (Py_ssize_t t = 0; t < nt && !out[i]; t++) {
            int64_t start = ix[4 * t], count = ix[4 * t + 1], proto = ix[4 * t + 2], kind = ix[4 * t + 3];
            if (q->proto != proto || count == 0) continue;
            if (proto == 6 && (q->tcp_flags & TCP_CONTROL)) continue;
            if (kind == 2 && q->pay_len != 0) continue;
            int64_t lo = 0, hi = count; /* the first hash >= h[i] */
            while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (th[start + mid] < h[i]) lo = mid + 1; else hi = mid;
            }
            if (lo == count || th[start + lo] != h[i]) continue;
            const uint64_t *pair = tp + 8 * (start + lo);
            int hit = same_end(pair, fam, shi, slo, q->sport) && same_end(pair + 4, fam, dhi, dlo, q->dport);
            if (!hit && kind != 0)
                hit = same_end(pair, fam, dhi, dlo, q->dport) && same_end(pair + 4, fam, shi, slo, q->sport);
            if (hit) {
                out[i] = 1;
                dropped++;
            }
        }
    }
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(dropped);
done:
    PyBuffer_Release(&recs);
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&index);
    PyBuffer_Release(&thash);
    PyBuffer_Release(&tpairs);
    PyBuffer_Release(&drop);
    return res;
}

/* group_flows(recs, table, side, inv, perm, starts, keys) -> number of groups
 *
 * The flow table's per-batch grouping (segverify.capture.flows.FlowBuilder) in one pass: every record's
 * bidirectional key (the lower (address, port) endpoint first, as flows.key_columns orients it; ``side``
 * 1 when the sender is the higher one), grouped by the exact key in an open-addressing hash table
 * (``table``: int32, a power of two over twice the records, scratch). Groups are numbered in order of first
 * appearance: ``inv`` (int64) the group of each record, ``keys`` (the flows.KEY_DTYPE layout) each group's
 * key, and ``perm``/``starts`` (int64) the records ordered by group, file order within one (a counting
 * sort). Only the first ``groups`` entries of ``starts`` and ``keys`` are written. */
#pragma pack(push, 1)
typedef struct {
    uint64_t lhi, llo, hhi, hlo;
    uint16_t lport, hport;
    uint8_t proto, family;
    uint16_t pad;
} FlowKey;
#pragma pack(pop)

static inline uint64_t mix64(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* A record's bidirectional key, the lower (address, port) endpoint first; 1 when the sender is the higher. */
static inline int flow_key(const Rec *q, FlowKey *k) {
    int v4 = q->family == 4;
    uint64_t shi = v4 ? 0 : q->src6hi, slo = v4 ? q->src4 : q->src6lo;
    uint64_t dhi = v4 ? 0 : q->dst6hi, dlo = v4 ? q->dst4 : q->dst6lo;
    int hi_side = shi > dhi || (shi == dhi && (slo > dlo || (slo == dlo && q->sport > q->dport)));
    k->lhi = hi_side ? dhi : shi;
    k->llo = hi_side ? dlo : slo;
    k->hhi = hi_side ? shi : dhi;
    k->hlo = hi_side ? slo : dlo;
    k->lport = hi_side ? q->dport : q->sport;
    k->hport = hi_side ? q->sport : q->dport;
    k->proto = q->proto;
    k->family = q->family;
    k->pad = 0;
    return hi_side;
}

static inline uint64_t key_hash(const FlowKey *k) {
    return mix64(k->llo ^ mix64(k->hlo ^ mix64(k->lhi ^ mix64(k->hhi)))) ^
           mix64(((uint64_t)k->lport << 32) | ((uint64_t)k->hport << 16) | ((uint64_t)k->proto << 8) | k->family);
}

static PyObject *group_flows(PyObject *self, PyObject *args) {
    Py_buffer recs, table, side, inv, perm, starts, keys;
    if (!PyArg_ParseTuple(args, "y*w*w*w*w*w*w*", &recs, &table, &side, &inv, &perm, &starts, &keys)) return NULL;
    PyObject *res = NULL;
    Py_ssize_t n = recs.len / (Py_ssize_t)sizeof(Rec), cap = table.len / 4;
    if (!need(&side, n, "side") || !need(&inv, n * 8, "inv") || !need(&perm, n * 8, "perm") ||
        !need(&starts, n * 8, "starts") || !need(&keys, n * (Py_ssize_t)sizeof(FlowKey), "keys"))
        goto done;
    if (cap < 2 * n || (cap & (cap - 1))) {
        PyErr_SetString(PyExc_ValueError, "group_flows: the table must be a power of two over twice the records");
        goto done;
    }
    const Rec *r = (const Rec *)recs.buf;
    int32_t *tb = (int32_t *)table.buf;
    uint8_t *sd = (uint8_t *)side.buf;
    int64_t *iv = (int64_t *)inv.buf, *pm = (int64_t *)perm.buf, *st = (int64_t *)starts.buf;
    FlowKey *ks = (FlowKey *)keys.buf;
    Py_ssize_t groups = 0;
    Py_BEGIN_ALLOW_THREADS
    memset(tb, 0xFF, (size_t)cap * 4);
    for (Py_ssize_t i = 0; i < n; i++) {
        const Rec *q = r + i;
        FlowKey k;
        int hi_side = flow_key(q, &k);
        sd[i] = (uint8_t)hi_side;
        uint64_t h = key_hash(&k);
        Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(cap - 1));
        for (;;) {
            int32_t g = tb[at];
            if (g < 0) {
                tb[at] = (int32_t)groups;
                ks[groups] = k;
                iv[i] = groups++;
                break;
            }
            if (!memcmp(&ks[g], &k, sizeof k)) {
                iv[i] = g;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
    }
    /* counting sort by group: starts, then each record at its group's next place (file order kept) */
    memset(st, 0, (size_t)groups * 8);
    for (Py_ssize_t i = 0; i < n; i++) st[iv[i]]++;
    int64_t sum = 0;
    for (Py_ssize_t g = 0; g < groups; g++) {
        int64_t c = st[g];
        st[g] = sum;
        sum += c;
    }
    for (Py_ssize_t i = 0; i < n; i++) pm[st[iv[i]]++] = i;
    for (Py_ssize_t g = groups - 1; g > 0; g--) st[g] = st[g - 1]; /* back to the starts */
    if (groups) st[0] = 0;
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(groups);
done:
    PyBuffer_Release(&recs);
    PyBuffer_Release(&table);
    PyBuffer_Release(&side);
    PyBuffer_Release(&inv);
    PyBuffer_Release(&perm);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&keys);
    return res;
}

/* flow_sums(recs, inv, side, ids, pk, by, pay, ev, tmin, tmax)
 *
 * The flow table's per-packet sums of one batch (segverify.capture.flows.FlowBuilder._add), in one pass: record i
 * belongs to group inv[i] (int64), which is flow ids[inv[i]] (int64), on key side side[i] (uint8, 0 or 1). Per
 * flow f and side s (int64 [f * 2 + s]): packets pk, wire bytes by, payload bytes pay, and (uint32) the OR of the
 * event bits ev (TCP flags << 16, payload, pure SYN, SYN-ACK, pure ACK); per flow (int64 [f]): first and last
 * time tmin, tmax. Every index is checked against its array. */
#define TCP_SYN 0x02
#define TCP_ACK 0x10
#define EV_SYN 1
#define EV_SYNACK 2
#define EV_ACK 4
#define EV_DATA 8
static PyObject *flow_sums(PyObject *self, PyObject *args) {
    Py_buffer recs, inv, side, ids, pk, by, pay, ev, tmin, tmax;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*w*w*w*", &recs, &inv, &side, &ids, &pk, &by, &pay, &ev, &tmin, &tmax))
        return NULL;
    PyObject *res = NULL;
    Py_ssize_t n = recs.len / (Py_ssize_t)sizeof(Rec), groups = ids.len / 8, flows = tmin.len / 8;
    if (!need(&inv, n * 8, "inv") || !need(&side, n, "side") || !need(&tmax, flows * 8, "tmax") ||
        !need(&pk, flows * 16, "pk") || !need(&by, flows * 16, "by") || !need(&pay, flows * 16, "pay") ||
        !need(&ev, flows * 8, "ev"))
        goto done;
    const Rec *r = (const Rec *)recs.buf;
    const int64_t *iv = (const int64_t *)inv.buf, *fid = (const int64_t *)ids.buf;
    const uint8_t *sd = (const uint8_t *)side.buf;
    int64_t *cpk = (int64_t *)pk.buf, *cby = (int64_t *)by.buf, *cpay = (int64_t *)pay.buf;
    int64_t *cmin = (int64_t *)tmin.buf, *cmax = (int64_t *)tmax.buf;
    uint32_t *cev = (uint32_t *)ev.buf;
    for (Py_ssize_t g = 0; g < groups; g++)
        if (fid[g] < 0 || fid[g] >= flows) {
            PyErr_SetString(PyExc_ValueError, "flow_sums: a flow id outside the columns");
            goto done;
        }
    for (Py_ssize_t i = 0; i < n; i++)
        if (iv[i] < 0 || iv[i] >= groups || sd[i] > 1) {
            PyErr_SetString(PyExc_ValueError, "flow_sums: a group outside ids, or a side other than 0 or 1");
            goto done;
        }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const Rec *q = r + i;
        int64_t f = fid[iv[i]], at = f * 2 + sd[i];
        uint32_t flags = q->tcp_flags, e = (flags << 16) | (q->pay_len > 0 ? EV_DATA : 0);
        if (q->proto == 6) {
            uint32_t sa = flags & (TCP_SYN | TCP_ACK);
            e |= sa == TCP_SYN ? EV_SYN : sa == (TCP_SYN | TCP_ACK) ? EV_SYNACK : sa == TCP_ACK ? EV_ACK : 0;
        }
        cpk[at] += 1;
        cby[at] += q->wirelen;
        cpay[at] += q->pay_len;
        cev[at] |= e;
        if (q->ts < cmin[f]) cmin[f] = q->ts;
        if (q->ts > cmax[f]) cmax[f] = q->ts;
    }
    Py_END_ALLOW_THREADS
    res = Py_None;
    Py_INCREF(res);
done:
    PyBuffer_Release(&recs);
    PyBuffer_Release(&inv);
    PyBuffer_Release(&side);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&pk);
    PyBuffer_Release(&by);
    PyBuffer_Release(&pay);
    PyBuffer_Release(&ev);
    PyBuffer_Release(&tmin);
    PyBuffer_Release(&tmax);
    return res;
}

/* tcp_runs(recs, table, head) -> how many records join a run an earlier record began
 *
 * The harvest's runs (segverify.capture.collect.Harvest._take): rows of one TCP stream (one sender of one exact
 * endpoint pair) that reassembly can take in one step. A run is a stream's rows, in order, with none of SYN,
 * FIN and RST, each carrying the bytes right after the previous one's (a row with no payload joins any
 * run); a row of the pair with one of those flags, from either end, ends both ends' runs. ``head`` (int32, one
 * per record) is set to -1 for a record in no run (not TCP, an IP fragment, or SYN, FIN or RST), to its own
 * index for the first of a run, else to the index of its run's first record. ``table`` (int32, a power of two
 * over twice the records) is scratch for an open-addressing table of the pairs seen. */
typedef struct {
    FlowKey key;
    int32_t head[2]; /* the open run of each end, or -1 */
    uint32_t expect[2]; /* the sequence number right after the run's last bytes */
    uint8_t has_data[2]; /* whether the open run has bytes yet (expect is then set) */
} RunPair;

static PyObject *tcp_runs(PyObject *self, PyObject *args) {
    Py_buffer recs, table, head;
    if (!PyArg_ParseTuple(args, "y*w*w*", &recs, &table, &head)) return NULL;
    PyObject *res = NULL;
    RunPair *pairs = NULL;
    Py_ssize_t n = recs.len / (Py_ssize_t)sizeof(Rec), cap = table.len / 4;
    if (!need(&head, n * 4, "head")) goto done;
    if (cap < 2 * n || (cap & (cap - 1))) {
        PyErr_SetString(PyExc_ValueError, "tcp_runs: the table must be a power of two over twice the records");
        goto done;
    }
    pairs = (RunPair *)PyMem_Malloc((size_t)(n ? n : 1) * sizeof(RunPair));
    if (!pairs) {
        PyErr_NoMemory();
        goto done;
    }
    const Rec *r = (const Rec *)recs.buf;
    int32_t *tb = (int32_t *)table.buf, *hd = (int32_t *)head.buf;
    Py_ssize_t npairs = 0, joined = 0;
    Py_BEGIN_ALLOW_THREADS
    memset(tb, 0xFF, (size_t)cap * 4);
    for (Py_ssize_t i = 0; i < n; i++) {
        const Rec *q = r + i;
        hd[i] = -1;
        if (q->proto != 6 || (q->frag & FRAG_IS_FRAGMENT) || (q->family != 4 && q->family != 6)) continue;
        FlowKey k;
        int hi_side = flow_key(q, &k);
        uint64_t h = key_hash(&k);
        Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(cap - 1));
        RunPair *pr;
        for (;;) {
            int32_t g = tb[at];
            if (g < 0) {
                tb[at] = (int32_t)npairs;
                pr = pairs + npairs++;
                pr->key = k;
                pr->head[0] = pr->head[1] = -1;
                pr->has_data[0] = pr->has_data[1] = 0;
                pr->expect[0] = pr->expect[1] = 0;
                break;
            }
            if (!memcmp(&pairs[g].key, &k, sizeof k)) {
                pr = pairs + g;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
        if (q->tcp_flags & TCP_CONTROL) { /* ends both ends' runs */
            pr->head[0] = pr->head[1] = -1;
            continue;
        }
        /* an end whose address equals the other's (a packet to itself) is in no run: both ends are one */
        if (k.lhi == k.hhi && k.llo == k.hlo && k.lport == k.hport) continue;
        int e = hi_side;
        uint32_t len = q->pay_len;
        if (pr->head[e] >= 0 && (len == 0 || !pr->has_data[e] || q->seq == pr->expect[e])) {
            hd[i] = pr->head[e];
            joined++;
        } else {
            hd[i] = (int32_t)i;
            pr->head[e] = (int32_t)i;
            pr->has_data[e] = 0;
        }
        if (len) {
            pr->expect[e] = q->seq + len;
            pr->has_data[e] = 1;
        }
    }
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(joined);
done:
    PyMem_Free(pairs);
    PyBuffer_Release(&recs);
    PyBuffer_Release(&table);
    PyBuffer_Release(&head);
    return res;
}

/* gather(buf, offs, lens, rows) -> bytes
 *
 * The bytes of ``rows`` (int64 indices into ``offs`` and ``lens``, both int64: each row's offset in ``buf`` and
 * length) back to back, in that order: a run of segments' payloads joined in one copy each. A range outside
 * ``buf`` is refused. */
static PyObject *gather(PyObject *self, PyObject *args) {
    Py_buffer buf, offs, lens, rows;
    if (!PyArg_ParseTuple(args, "y*y*y*y*", &buf, &offs, &lens, &rows)) return NULL;
    PyObject *res = NULL;
    Py_ssize_t n = offs.len / 8, k = rows.len / 8;
    if (!need(&lens, n * 8, "lens")) goto done;
    const int64_t *o = (const int64_t *)offs.buf, *l = (const int64_t *)lens.buf, *r = (const int64_t *)rows.buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        int64_t j = r[i];
        if (j < 0 || j >= n || o[j] < 0 || l[j] < 0 || o[j] > buf.len || l[j] > buf.len - o[j]) {
            PyErr_SetString(PyExc_ValueError, "gather: a row outside the buffer");
            goto done;
        }
        total += (Py_ssize_t)l[j];
    }
    res = PyBytes_FromStringAndSize(NULL, total);
    if (!res) goto done;
    char *out = PyBytes_AS_STRING(res);
    const char *src = (const char *)buf.buf;
    for (Py_ssize_t i = 0; i < k; i++) {
        memcpy(out, src + o[r[i]], (size_t)l[r[i]]);
        out += l[r[i]];
    }
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&lens);
    PyBuffer_Release(&rows);
    return res;
}

/* keep_read_blocks(largest) -> whether the C library was told
 *
 * glibc hands blocks over its mmap threshold (which it raises as such blocks are freed, up to 32 MiB) straight
 * back to the kernel when they are freed, and trims the top of its heap beyond twice that: a reader that
 * allocates a 16 MiB block per read then has the kernel zero fresh pages for every block (a third of reading's
 * system time). Raising both above ``largest`` keeps freed blocks for the next ones. Elsewhere: nothing. */
#if defined(__GLIBC__)
#include <malloc.h>
#endif
static PyObject *keep_read_blocks(PyObject *self, PyObject *args) {
    Py_ssize_t largest;
    if (!PyArg_ParseTuple(args, "n", &largest)) return NULL;
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    if (largest > 0 && largest <= (Py_ssize_t)1 << 28 &&
        mallopt(M_MMAP_THRESHOLD, (int)(largest * 2)) && mallopt(M_TRIM_THRESHOLD, (int)(largest * 2)))
        Py_RETURN_TRUE;
#endif
    Py_RETURN_FALSE;
}

/* layout() -> ((field, offset, size), ...): checked against BATCH_DTYPE before the module is used. */
static PyObject *layout(PyObject *self, PyObject *noargs) {
#define F(name) Py_BuildValue("(snn)", #name, (Py_ssize_t)offsetof(Rec, name), (Py_ssize_t)sizeof(((Rec *)0)->name))
    return Py_BuildValue("(NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN)", F(ts), F(pos), F(caplen), F(wirelen), F(ifindex), F(linktype), F(vlan), F(family),
                        F(proto), F(src4), F(dst4), F(src6hi), F(src6lo), F(dst6hi), F(dst6lo), F(sport), F(dport),
                        F(tcp_flags), F(seq), F(ack), F(icmp_type), F(icmp_code), F(ip_len), F(ip_id), F(frag_off),
                        F(frag), F(l3_off), F(pay_off), F(pay_len), F(status));
#undef F
}

static PyMethodDef methods[] = {
    {"pcap_fused", pcap_fused, METH_VARARGS, "The pcap record walk and header decoding in one pass."},
    {"decode", decode, METH_VARARGS, "Header decoding of a run of frames."},
    {"pcap_walk", pcap_walk, METH_VARARGS, "The pcap record walk alone."},
    {"pcapng_walk", pcapng_walk, METH_VARARGS, "The pcapng packet-block walk."},
    {"select_pairs", select_pairs, METH_VARARGS, "The harvest's candidate test over decoded records."},
    {"quiet_drop", quiet_drop, METH_VARARGS, "The harvest's bulk drop test over decoded records."},
    {"group_flows", group_flows, METH_VARARGS, "The flow table's per-batch grouping by exact key."},
    {"flow_sums", flow_sums, METH_VARARGS, "The flow table's per-packet sums of one batch."},
    {"tcp_runs", tcp_runs, METH_VARARGS, "The harvest's runs of in-order TCP segments."},
    {"gather", gather, METH_VARARGS, "Rows' bytes of a buffer, back to back."},
    {"keep_read_blocks", keep_read_blocks, METH_VARARGS, "Keep freed blocks of up to this size for reuse (glibc)."},
    {"layout", layout, METH_NOARGS, "The decoded record's fields: (name, offset, size)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cloops", "Compiled loops of the capture reader.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__cloops(void) { return PyModule_Create(&module); }
