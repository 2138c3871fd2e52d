/* The rule compiler's hot loops, run directly on the CUDD managers that ``dd`` creates.
 *
 * ``dd`` wraps every CUDD operation in a Python call: building a rule's cube took 60 us of
 * dictionary handling for a few microseconds of CUDD, and the first-match loop spent a fifth of
 * its time in wrappers. Here the same CUDD functions are called from C, with the GIL released,
 * so two managers can compile two halves of a rule set at once.
 *
 * Nothing here is linked against CUDD: ``bind`` looks its functions up in ``dd``'s own extension
 * module (already loaded; CUDD 3.0 is compiled into it and exports them), so these calls act on
 * exactly the managers ``dd`` made. ``kernel.py`` checks the object and node layouts assumed
 * below on live objects before anything uses this module, and falls back to ``dd`` if they
 * differ.
 *
 * Reference counting follows CUDD's own recursive code: every node this module hands back
 * carries one reference that the caller owns (``kernel.py`` wraps it in a ``dd`` Function, which
 * takes its own, then calls ``deref``); intermediate results are referenced before the next
 * call that could collect garbage.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct DdManager DdManager;
typedef struct DdNode DdNode;

/* CUDD 3.0's DdNode on LP64 (cuddInt.h: two half words, the unique-table link, then the children). */
struct DdNode {
    uint32_t index;
    uint32_t ref;
    DdNode *next;
    DdNode *T;
    DdNode *E;
};

#define REGULAR(p) ((DdNode *)((uintptr_t)(p) & ~(uintptr_t)1))
#define NOT(p) ((DdNode *)((uintptr_t)(p) ^ (uintptr_t)1))
#define IS_COMPLEMENT(p) ((int)((uintptr_t)(p) & 1))

/* dd.cudd.BDD as Cython lays it out (dd 0.6: cudd.pyx, ``cdef class BDD``); checked in manager(). */
typedef struct {
    PyObject_HEAD
    void *vtab;
    DdManager *manager;
    PyObject *vars;
    PyObject *index_of_var;
    PyObject *var_with_index;
} DdBDDObject;

typedef DdNode *(*BinaryOp)(DdManager *, DdNode *, DdNode *);
static BinaryOp bdd_and, bdd_or;
static void (*cudd_ref)(DdNode *);
static void (*cudd_deref)(DdNode *);
static void (*cudd_recursive_deref)(DdManager *, DdNode *);
static DdNode *(*cudd_read_one)(DdManager *);
static int (*cudd_read_size)(DdManager *);
static int (*cudd_read_perm)(DdManager *, int);
static DdNode *(*cudd_unique_inter)(DdManager *, int, DdNode *, DdNode *);
static int (*cudd_bdd_leq)(DdManager *, DdNode *, DdNode *);
static int bound;

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len % itemsize) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: length %zd is not a multiple of %zd", what, view->len, itemsize);
        return -1;
    }
    return 0;
}

static int not_bound(void) {
    if (bound)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "_cuddops.bind() was not called");
    return 1;
}

/* bind(path): look CUDD's functions up in dd's loaded extension module at ``path``. */
static PyObject *py_bind(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path))
        return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h) {
        PyErr_Format(PyExc_ImportError, "dd's CUDD module is not loaded: %s", path);
        return NULL;
    }
    struct { void **slot; const char *name; } table[] = {
        {(void **)&bdd_and, "Cudd_bddAnd"},
        {(void **)&bdd_or, "Cudd_bddOr"},
        {(void **)&cudd_ref, "Cudd_Ref"},
        {(void **)&cudd_deref, "Cudd_Deref"},
        {(void **)&cudd_recursive_deref, "Cudd_RecursiveDeref"},
        {(void **)&cudd_read_one, "Cudd_ReadOne"},
        {(void **)&cudd_read_size, "Cudd_ReadSize"},
        {(void **)&cudd_read_perm, "Cudd_ReadPerm"},
        {(void **)&cudd_unique_inter, "cuddUniqueInter"},
        {(void **)&cudd_bdd_leq, "Cudd_bddLeq"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        *table[i].slot = dlsym(h, table[i].name);
        if (!*table[i].slot) {
            dlclose(h);
            PyErr_Format(PyExc_ImportError, "%s not found in %s", table[i].name, path);
            return NULL;
        }
    }
    dlclose(h); /* NOLOAD took a reference; the module stays loaded by Python */
    bound = 1;
    Py_RETURN_NONE;
}

/* manager(bdd): the DdManager pointer of a dd.cudd.BDD, after checking the object is laid out as assumed. */
static PyObject *py_manager(PyObject *self, PyObject *bdd) {
    if ((size_t)Py_TYPE(bdd)->tp_basicsize < sizeof(DdBDDObject)) {
        PyErr_SetString(PyExc_TypeError, "not a dd.cudd.BDD of the expected layout");
        return NULL;
    }
    DdBDDObject *o = (DdBDDObject *)bdd;
    const char *names[] = {"vars", "_index_of_var", "_var_with_index"};
    PyObject *fields[] = {o->vars, o->index_of_var, o->var_with_index};
    for (int i = 0; i < 3; i++) {
        PyObject *attr = PyObject_GetAttrString(bdd, names[i]);
        if (!attr)
            return NULL;
        Py_DECREF(attr);
        if (attr != fields[i]) {
            PyErr_SetString(PyExc_TypeError, "dd.cudd.BDD is not laid out as expected");
            return NULL;
        }
    }
    if (!o->manager) {
        PyErr_SetString(PyExc_ValueError, "the BDD manager is closed");
        return NULL;
    }
    return PyLong_FromVoidPtr(o->manager);
}

/* node(ptr): (index, then child, else child) of a live regular node: lets kernel.py check the layout. */
static PyObject *py_node(PyObject *self, PyObject *arg) {
    DdNode *p = PyLong_AsVoidPtr(arg);
    if (!p && PyErr_Occurred())
        return NULL;
    p = REGULAR(p);
    return Py_BuildValue("(kKK)", (unsigned long)p->index, (unsigned long long)(uintptr_t)p->T,
                         (unsigned long long)(uintptr_t)p->E);
}

/* The node (index, t, e), complement edges normalised as CUDD requires (the then child is regular). */
static DdNode *make(DdManager *dd, int index, DdNode *t, DdNode *e) {
    if (t == e)
        return t;
    if (IS_COMPLEMENT(t)) {
        DdNode *r = cudd_unique_inter(dd, index, NOT(t), NOT(e));
        return r ? NOT(r) : NULL;
    }
    return cudd_unique_inter(dd, index, t, e);
}

/* Release one reference of each of the first ``n`` nodes (NULL entries skipped). */
static void deref_each(DdManager *dd, DdNode *const *nodes, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++)
        if (nodes[j])
            cudd_recursive_deref(dd, nodes[j]);
}

/* levels_match(mgr): True when every variable's level is its index (no reordering since declaration):
 * ``cube`` and ``transfer`` build nodes bottom-up by index and rely on it. */
static PyObject *py_levels_match(PyObject *self, PyObject *arg) {
    if (not_bound())
        return NULL;
    DdManager *dd = PyLong_AsVoidPtr(arg);
    if (!dd)
        return NULL;
    int n = cudd_read_size(dd);
    for (int i = 0; i < n; i++)
        if (cudd_read_perm(dd, i) != i)
            Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

/* The cube of a row of literals, one per variable in index order (0, 1, or 2: free), built from the
 * bottom up (index order is level order: ``levels_match``). Returned referenced, or NULL (out of memory). */
static DdNode *build_cube(DdManager *dd, const unsigned char *lits, int n) {
    DdNode *one = cudd_read_one(dd), *f = one;
    cudd_ref(f);
    for (int i = n - 1; i >= 0; i--) {
        if (lits[i] > 1)
            continue;
        DdNode *g = lits[i] ? make(dd, i, f, NOT(one)) : make(dd, i, NOT(one), f);
        if (!g) {
            cudd_recursive_deref(dd, f);
            return NULL;
        }
        cudd_ref(g);
        cudd_recursive_deref(dd, f);
        f = g;
    }
    return f;
}

/* cube(mgr, assignment, index_of, add_int): the conjunction of the literals in ``assignment`` (variable
 * name -> bool), the variables numbered by ``index_of``, as the Function ``add_int`` (the manager's
 * ``BDD._add_int``) makes of it. */
static PyObject *py_cube(PyObject *self, PyObject *args) {
    PyObject *mgr_obj, *assignment, *index_of, *add_int;
    if (not_bound() || !PyArg_ParseTuple(args, "OO!O!O", &mgr_obj, &PyDict_Type, &assignment, &PyDict_Type,
                                         &index_of, &add_int))
        return NULL;
    DdManager *dd = PyLong_AsVoidPtr(mgr_obj);
    if (!dd)
        return NULL;
    int n = cudd_read_size(dd);
    unsigned char *lits = PyMem_Malloc((size_t)n);
    if (!lits)
        return PyErr_NoMemory();
    memset(lits, 2, (size_t)n);
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(assignment, &pos, &key, &value)) {
        PyObject *index_obj = PyDict_GetItemWithError(index_of, key);
        if (!index_obj) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_KeyError, "unknown variable %R", key);
            PyMem_Free(lits);
            return NULL;
        }
        long index = PyLong_AsLong(index_obj);
        int truth = PyObject_IsTrue(value);
        if ((index == -1 && PyErr_Occurred()) || truth < 0) {
            PyMem_Free(lits);
            return NULL;
        }
        if (index < 0 || index >= n) {
            PyMem_Free(lits);
            return PyErr_Format(PyExc_ValueError, "variable index %ld out of range", index);
        }
        lits[index] = (unsigned char)truth;
    }
    DdNode *f = build_cube(dd, lits, n);
    PyMem_Free(lits);
    if (!f)
        return PyErr_NoMemory();
    PyObject *as_int = PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)f + 2); /* dd's numbering */
    PyObject *fn = as_int ? PyObject_CallOneArg(add_int, as_int) : NULL;
    Py_XDECREF(as_int);
    cudd_recursive_deref(dd, f); /* the Function holds its own reference now (or the call failed) */
    return fn;
}

/* cubes(mgr, rows, out): the cube of each row of literals (``cube``'s bytes, one row per variable
 * count) into buffer ``out`` (uint64), each referenced. Runs without the GIL. */
static PyObject *py_cubes(PyObject *self, PyObject *args) {
    PyObject *mgr_obj, *rows_obj, *out_obj;
    if (not_bound() || !PyArg_ParseTuple(args, "OOO", &mgr_obj, &rows_obj, &out_obj))
        return NULL;
    DdManager *dd = PyLong_AsVoidPtr(mgr_obj);
    if (!dd)
        return NULL;
    int n = cudd_read_size(dd);
    Py_buffer rows, out;
    if (get_buffer(rows_obj, &rows, 0, n, "rows") < 0)
        return NULL;
    if (get_buffer(out_obj, &out, 1, sizeof(DdNode *), "out") < 0) {
        PyBuffer_Release(&rows);
        return NULL;
    }
    Py_ssize_t count = rows.len / n, done = 0;
    PyObject *result = NULL;
    if (out.len != count * (Py_ssize_t)sizeof(DdNode *)) {
        PyErr_SetString(PyExc_ValueError, "rows and out differ in count");
    } else {
        const unsigned char *p = rows.buf;
        DdNode **o = out.buf;
        Py_BEGIN_ALLOW_THREADS
        for (; done < count; done++) {
            if (!(o[done] = build_cube(dd, p + done * n, n)))
                break;
        }
        if (done < count)
            deref_each(dd, o, done);
        Py_END_ALLOW_THREADS
        if (done < count)
            PyErr_NoMemory();
        else
            result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&rows);
    PyBuffer_Release(&out);
    return result;
}

/* The first-match loop (see firewall.first_match, which this mirrors operation for operation):
 * effective[i] = matches[i] & ~decided, decided |= effective[i]; runs of allow rules are gathered in
 * ``run`` and merged into ``allowed`` once per run. ``state`` holds (allowed, decided, run), each
 * referenced, on entry and on return, so a long rule list can be compiled in chunks; every effective
 * set is returned referenced. Returns 0, or -1 when CUDD fails (out of memory), with the effective
 * sets of this call released and ``state`` left valid. */
static int first_match(DdManager *dd, DdNode *const *matches, const uint8_t *allow, Py_ssize_t n,
                       DdNode **effective, DdNode **state) {
    DdNode *zero = NOT(cudd_read_one(dd));
    DdNode *allowed = state[0], *decided = state[1], *run = state[2], *t;
    Py_ssize_t i;
    int rc = -1;
    for (i = 0; i < n; i++) {
        DdNode *eff = bdd_and(dd, matches[i], NOT(decided));
        if (!eff)
            goto done;
        cudd_ref(eff);
        effective[i] = eff;
        if (eff == zero)
            continue;
        if (allow[i]) {
            if (!(t = bdd_or(dd, run, eff)))
                goto failed_after;
            cudd_ref(t);
            cudd_recursive_deref(dd, run);
            run = t;
        } else if (run != zero) {
            if (!(t = bdd_or(dd, allowed, run)))
                goto failed_after;
            cudd_ref(t);
            cudd_recursive_deref(dd, allowed);
            cudd_recursive_deref(dd, run);
            allowed = t;
            run = zero;
            cudd_ref(run);
        }
        if (!(t = bdd_or(dd, decided, eff)))
            goto failed_after;
        cudd_ref(t);
        cudd_recursive_deref(dd, decided);
        decided = t;
    }
    rc = 0;
    goto done;
failed_after:
    i++; /* effective[i] was taken */
done:
    if (rc < 0)
        deref_each(dd, effective, i);
    state[0] = allowed;
    state[1] = decided;
    state[2] = run;
    return rc;
}

/* first_match(mgr, matches, allow, effective, state) -> state: ``matches`` a buffer of node pointers
 * (uint64), ``allow`` one byte per rule, ``effective`` a writable buffer as long as ``matches``;
 * ``state`` is None at the start (all empty) or the (allowed, decided, run) a previous call returned,
 * whose references pass back to this call. Runs without the GIL: nothing else may use this manager
 * meanwhile. */
static PyObject *py_first_match(PyObject *self, PyObject *args) {
    PyObject *mgr_obj, *m_obj, *a_obj, *e_obj, *state_obj;
    if (not_bound() || !PyArg_ParseTuple(args, "OOOOO", &mgr_obj, &m_obj, &a_obj, &e_obj, &state_obj))
        return NULL;
    DdManager *dd = PyLong_AsVoidPtr(mgr_obj);
    if (!dd)
        return NULL;
    DdNode *state[3];
    if (state_obj == Py_None) {
        DdNode *zero = NOT(cudd_read_one(dd));
        for (int k = 0; k < 3; k++) {
            state[k] = zero;
            cudd_ref(zero);
        }
    } else {
        if (!PyTuple_Check(state_obj) || PyTuple_GET_SIZE(state_obj) != 3) {
            PyErr_SetString(PyExc_TypeError, "state must be None or a 3-tuple");
            return NULL;
        }
        for (int k = 0; k < 3; k++) {
            state[k] = PyLong_AsVoidPtr(PyTuple_GET_ITEM(state_obj, k));
            if (!state[k])
                return NULL;
        }
    }
    Py_buffer m, a, e;
    int have_m = 0, have_a = 0, have_e = 0, rc = -2;
    if (get_buffer(m_obj, &m, 0, sizeof(DdNode *), "matches") < 0)
        goto out;
    have_m = 1;
    if (get_buffer(a_obj, &a, 0, 1, "allow") < 0)
        goto out;
    have_a = 1;
    if (get_buffer(e_obj, &e, 1, sizeof(DdNode *), "effective") < 0)
        goto out;
    have_e = 1;
    Py_ssize_t n = m.len / (Py_ssize_t)sizeof(DdNode *);
    if (a.len != n || e.len != m.len) {
        PyErr_SetString(PyExc_ValueError, "matches, allow and effective differ in length");
        goto out;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = first_match(dd, m.buf, a.buf, n, e.buf, state);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        PyErr_NoMemory();
out:
    if (have_m)
        PyBuffer_Release(&m);
    if (have_a)
        PyBuffer_Release(&a);
    if (have_e)
        PyBuffer_Release(&e);
    if (rc == 0)
        return Py_BuildValue("(NNN)", PyLong_FromVoidPtr(state[0]), PyLong_FromVoidPtr(state[1]),
                             PyLong_FromVoidPtr(state[2]));
    /* The state's references were handed to this call: release them, the caller will not see them. */
    for (int k = 0; k < 3; k++)
        cudd_recursive_deref(dd, state[k]);
    return NULL;
}

/* Source node -> destination node, for ``transfer``: open addressing, grows at half full. */
typedef struct {
    DdNode *key;
    DdNode *value;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask, used;
} NodeMap;

static size_t slot_of(const NodeMap *map, DdNode *key) {
    uintptr_t x = (uintptr_t)key >> 5; /* nodes are 32-byte aligned */
    x *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 17) & map->mask;
}

static DdNode **map_get(const NodeMap *map, DdNode *key) {
    for (size_t i = slot_of(map, key); map->slots[i].key; i = (i + 1) & map->mask)
        if (map->slots[i].key == key)
            return &map->slots[i].value;
    return NULL;
}

static int map_put(NodeMap *map, DdNode *key, DdNode *value) {
    if ((map->used + 1) * 2 > map->mask + 1) {
        NodeMap bigger = {calloc((map->mask + 1) * 2, sizeof(Slot)), (map->mask + 1) * 2 - 1, map->used};
        if (!bigger.slots)
            return -1;
        for (size_t j = 0; j <= map->mask; j++) {
            if (!map->slots[j].key)
                continue;
            size_t i = slot_of(&bigger, map->slots[j].key);
            while (bigger.slots[i].key)
                i = (i + 1) & bigger.mask;
            bigger.slots[i] = map->slots[j];
        }
        free(map->slots);
        *map = bigger;
    }
    size_t i = slot_of(map, key);
    while (map->slots[i].key)
        i = (i + 1) & map->mask;
    map->slots[i].key = key;
    map->slots[i].value = value;
    map->used++;
    return 0;
}

typedef struct {
    DdManager *dst;
    DdNode *src_one, *dst_one;
    NodeMap map; /* each value holds one reference, released at the end */
} Transfer;

/* The copy of ``f`` in the destination manager (unreferenced, as CUDD's recursive functions return it).
 * Recursion depth is bounded by the number of variables. */
static DdNode *copy(Transfer *x, DdNode *f) {
    DdNode *r = REGULAR(f);
    int complement = IS_COMPLEMENT(f);
    if (r == x->src_one)
        return complement ? NOT(x->dst_one) : x->dst_one;
    DdNode **hit = map_get(&x->map, r);
    if (hit)
        return complement ? NOT(*hit) : *hit;
    DdNode *t = copy(x, r->T);
    if (!t)
        return NULL;
    cudd_ref(t);
    DdNode *e = copy(x, r->E);
    if (!e) {
        cudd_recursive_deref(x->dst, t);
        return NULL;
    }
    cudd_ref(e);
    DdNode *res = make(x->dst, (int)r->index, t, e);
    if (!res) {
        cudd_recursive_deref(x->dst, t);
        cudd_recursive_deref(x->dst, e);
        return NULL;
    }
    cudd_ref(res); /* the map's reference */
    cudd_recursive_deref(x->dst, t);
    cudd_recursive_deref(x->dst, e);
    if (map_put(&x->map, r, res) < 0) {
        cudd_recursive_deref(x->dst, res);
        return NULL;
    }
    return complement ? NOT(res) : res;
}

/* transfer(src, dst, nodes, out): copy every node of buffer ``nodes`` from manager ``src`` to manager
 * ``dst`` (same variables in the same order) into buffer ``out``, each referenced; nodes shared
 * between the roots are copied once. */
static PyObject *py_transfer(PyObject *self, PyObject *args) {
    PyObject *src_obj, *dst_obj, *in_obj, *out_obj;
    if (not_bound() || !PyArg_ParseTuple(args, "OOOO", &src_obj, &dst_obj, &in_obj, &out_obj))
        return NULL;
    DdManager *src = PyLong_AsVoidPtr(src_obj), *dst = PyLong_AsVoidPtr(dst_obj);
    if (!src || !dst)
        return NULL;
    Py_buffer in, out;
    if (get_buffer(in_obj, &in, 0, sizeof(DdNode *), "nodes") < 0)
        return NULL;
    if (get_buffer(out_obj, &out, 1, sizeof(DdNode *), "out") < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n = in.len / (Py_ssize_t)sizeof(DdNode *);
    if (out.len != in.len) {
        PyErr_SetString(PyExc_ValueError, "nodes and out differ in length");
    } else {
        Transfer x = {dst, cudd_read_one(src), cudd_read_one(dst), {calloc(1 << 12, sizeof(Slot)), (1 << 12) - 1, 0}};
        Py_ssize_t done = 0;
        int failed = !x.map.slots;
        Py_BEGIN_ALLOW_THREADS
        for (; !failed && done < n; done++) {
            DdNode *r = copy(&x, ((DdNode **)in.buf)[done]);
            if (!r) {
                failed = 1;
                break;
            }
            cudd_ref(r);
            ((DdNode **)out.buf)[done] = r;
        }
        if (x.map.slots) {
            for (size_t j = 0; j <= x.map.mask; j++)
                if (x.map.slots[j].key)
                    cudd_recursive_deref(dst, x.map.slots[j].value);
            free(x.map.slots);
        }
        if (failed)
            deref_each(dst, out.buf, done);
        Py_END_ALLOW_THREADS
        if (failed)
            PyErr_NoMemory();
        else
            result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return result;
}

/* meets(mgr, u, v): whether the sets share a packet, ``u`` and ``v`` given as dd's ints (``int(f)``).
 * u & v is empty exactly when u <= ~v, which CUDD decides without building a node and stops at the
 * first packet that proves otherwise (``and_exists`` over every variable needs a cube of them all, built
 * by dd on every call: 25 us). */
static PyObject *py_meets(PyObject *self, PyObject *args) {
    PyObject *mgr_obj;
    unsigned long long u, v;
    if (not_bound() || !PyArg_ParseTuple(args, "OKK", &mgr_obj, &u, &v))
        return NULL;
    DdManager *dd = PyLong_AsVoidPtr(mgr_obj);
    if (!dd)
        return NULL;
    if (u < 2 || v < 2) {
        PyErr_SetString(PyExc_ValueError, "not a dd node number");
        return NULL;
    }
    DdNode *f = (DdNode *)(uintptr_t)(u - 2), *g = (DdNode *)(uintptr_t)(v - 2);
    return PyBool_FromLong(!cudd_bdd_leq(dd, f, NOT(g)));
}

/* evaluate_packet(mgr, u, layout, src_v6, src_hi, src_lo, dst_v6, dst_hi, dst_lo, proto, sport, dport):
 * The value of ``u`` (dd's int) at one TCP/UDP packet's assignment, built here: a walk from the root, one node
 * per level, nothing built in CUDD. ``layout`` (int32) holds the variable index of
 * every bit, most significant first: src's family bit and 128 bits, dst's likewise, proto's 8, sport's 16,
 * dport's 16 (ICMP type and code are 0: no bit set). An IPv4 address is the top 32 of the 128 bits. */
#define LAYOUT_BITS (129 + 129 + 8 + 16 + 16)
#define MAX_POINT_VARS 4096

static void set_bits(uint8_t *b, const int32_t *idx, int n, uint64_t hi, uint64_t lo) {
    /* the n bits of (hi, lo), most significant first, where the value's top bit is bit n-1 of the pair */
    for (int k = 0; k < n; k++) {
        int pos = n - 1 - k; /* bit position in the value */
        int bit = pos >= 64 ? (int)((hi >> (pos - 64)) & 1) : (int)((lo >> pos) & 1);
        if (bit) b[idx[k] >> 3] |= (uint8_t)(1u << (idx[k] & 7));
    }
}

/* The node dd's int ``u`` stands for, in manager ``mgr_obj`` (set in ``*dd``), once ``layout`` (see
 * evaluate_packet) is checked: the arguments evaluate_packet and evaluate_packets share. NULL when unusable. */
static DdNode *packet_root(PyObject *mgr_obj, unsigned long long u, const Py_buffer *layout, const char *what,
                           DdManager **dd) {
    *dd = PyLong_AsVoidPtr(mgr_obj);
    if (!*dd)
        return NULL;
    if (u < 2) {
        PyErr_Format(PyExc_ValueError, "%s: not a dd node number", what);
        return NULL;
    }
    if (layout->len != LAYOUT_BITS * 4) {
        PyErr_Format(PyExc_ValueError, "%s: a layout of the wrong size", what);
        return NULL;
    }
    const int32_t *idx = (const int32_t *)layout->buf;
    for (int k = 0; k < LAYOUT_BITS; k++) {
        if (idx[k] < 0 || idx[k] >= MAX_POINT_VARS) {
            PyErr_Format(PyExc_ValueError, "%s: a variable index out of range", what);
            return NULL;
        }
    }
    return (DdNode *)(uintptr_t)(u - 2);
}

/* The value of f at one packet's assignment: the packet's bits set in a bit map, then one walk from the root. */
static int walk_packet(DdManager *dd, DdNode *f, const int32_t *idx, int s6, uint64_t shi, uint64_t slo, int d6,
                       uint64_t dhi, uint64_t dlo, int proto, int sport, int dport) {
    uint8_t b[MAX_POINT_VARS / 8];
    memset(b, 0, sizeof b);
    if (s6) b[idx[0] >> 3] |= (uint8_t)(1u << (idx[0] & 7));
    set_bits(b, idx + 1, 128, shi, slo);
    if (d6) b[idx[129] >> 3] |= (uint8_t)(1u << (idx[129] & 7));
    set_bits(b, idx + 130, 128, dhi, dlo);
    set_bits(b, idx + 258, 8, 0, (uint64_t)(proto & 0xFF));
    set_bits(b, idx + 266, 16, 0, (uint64_t)(sport & 0xFFFF));
    set_bits(b, idx + 282, 16, 0, (uint64_t)(dport & 0xFFFF));
    DdNode *one = cudd_read_one(dd);
    int comp = 0;
    for (;;) {
        comp ^= IS_COMPLEMENT(f);
        DdNode *r = REGULAR(f);
        if (r == one)
            break;
        uint32_t i = r->index;
        f = (i < MAX_POINT_VARS && (b[i >> 3] >> (i & 7)) & 1) ? r->T : r->E;
    }
    return !comp;
}

static PyObject *py_evaluate_packet(PyObject *self, PyObject *args) {
    PyObject *mgr_obj;
    unsigned long long u, shi, slo, dhi, dlo;
    int s6, d6, proto, sport, dport;
    Py_buffer layout;
    if (not_bound() || !PyArg_ParseTuple(args, "OKy*pKKpKKiii", &mgr_obj, &u, &layout, &s6, &shi, &slo, &d6, &dhi,
                                         &dlo, &proto, &sport, &dport))
        return NULL;
    PyObject *result = NULL;
    DdManager *dd;
    DdNode *f = packet_root(mgr_obj, u, &layout, "evaluate_packet", &dd);
    if (f)
        result = PyBool_FromLong(walk_packet(dd, f, (const int32_t *)layout.buf, s6, shi, slo, d6, dhi, dlo, proto,
                                             sport, dport));
    PyBuffer_Release(&layout);
    return result;
}

/* evaluate_packets(mgr, u, layout, v6, src_hi, src_lo, dst_hi, dst_lo, proto, sport, dport, out):
 * evaluate_packet for n packets at once: ``v6`` (uint8: both addresses IPv6), the addresses' halves (uint64,
 * as evaluate_packet takes them: an IPv4 address in the top 32 bits of the high half), ``proto``, ``sport`` and
 * ``dport`` (int64) hold n values each; ``out`` (uint8, n, writable) gets 1 where u holds the packet. */
static PyObject *py_evaluate_packets(PyObject *self, PyObject *args) {
    PyObject *mgr_obj, *objs[9];
    unsigned long long u;
    Py_buffer layout, bufs[9];
    static const Py_ssize_t sizes[9] = {1, 8, 8, 8, 8, 8, 8, 8, 1};
    static const char *names[9] = {"v6", "src_hi", "src_lo", "dst_hi", "dst_lo", "proto", "sport", "dport", "out"};
    if (not_bound() || !PyArg_ParseTuple(args, "OKy*OOOOOOOOO", &mgr_obj, &u, &layout, &objs[0], &objs[1], &objs[2],
                                         &objs[3], &objs[4], &objs[5], &objs[6], &objs[7], &objs[8]))
        return NULL;
    PyObject *result = NULL;
    int got = 0;
    DdManager *dd;
    DdNode *f = packet_root(mgr_obj, u, &layout, "evaluate_packets", &dd);
    if (!f)
        goto done;
    for (; got < 9; got++)
        if (get_buffer(objs[got], &bufs[got], got == 8, sizes[got], names[got]) < 0)
            goto done;
    Py_ssize_t n = bufs[0].len;
    for (int k = 1; k < 9; k++)
        if (bufs[k].len / sizes[k] != n) {
            PyErr_Format(PyExc_ValueError, "evaluate_packets: %s does not have one value per packet", names[k]);
            goto done;
        }
    const uint8_t *v6 = bufs[0].buf;
    const uint64_t *shi = bufs[1].buf, *slo = bufs[2].buf, *dhi = bufs[3].buf, *dlo = bufs[4].buf;
    const int64_t *proto = bufs[5].buf, *sport = bufs[6].buf, *dport = bufs[7].buf;
    uint8_t *out = bufs[8].buf;
    const int32_t *idx = (const int32_t *)layout.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = (uint8_t)walk_packet(dd, f, idx, v6[i], shi[i], slo[i], v6[i], dhi[i], dlo[i], (int)proto[i],
                                      (int)sport[i], (int)dport[i]);
    result = Py_None;
    Py_INCREF(result);
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&bufs[k]);
    PyBuffer_Release(&layout);
    return result;
}

/* deref(mgr, nodes): release one reference of each node in buffer ``nodes`` (NULL entries skipped). */
static PyObject *py_deref(PyObject *self, PyObject *args) {
    PyObject *mgr_obj, *nodes_obj;
    if (not_bound() || !PyArg_ParseTuple(args, "OO", &mgr_obj, &nodes_obj))
        return NULL;
    DdManager *dd = PyLong_AsVoidPtr(mgr_obj);
    if (!dd)
        return NULL;
    if (PyLong_Check(nodes_obj)) {
        DdNode *p = PyLong_AsVoidPtr(nodes_obj);
        if (!p)
            return NULL;
        cudd_recursive_deref(dd, p);
        Py_RETURN_NONE;
    }
    Py_buffer b;
    if (get_buffer(nodes_obj, &b, 0, sizeof(DdNode *), "nodes") < 0)
        return NULL;
    deref_each(dd, b.buf, b.len / (Py_ssize_t)sizeof(DdNode *));
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"bind", py_bind, METH_VARARGS, "bind(path): look CUDD's functions up in dd's loaded module."},
    {"manager", py_manager, METH_O, "manager(bdd) -> the DdManager pointer of a dd.cudd.BDD."},
    {"node", py_node, METH_O, "node(ptr) -> (index, then, else) of a live node."},
    {"levels_match", py_levels_match, METH_O, "levels_match(mgr) -> every variable's level is its index."},
    {"cube", py_cube, METH_VARARGS, "cube(mgr, assignment, index_of, add_int) -> Function."},
    {"cubes", py_cubes, METH_VARARGS, "cubes(mgr, rows, out): the cube of each row of literals, referenced."},
    {"first_match", py_first_match, METH_VARARGS,
     "first_match(mgr, matches, allow, effective, state) -> (allowed, decided, run), all referenced."},
    {"transfer", py_transfer, METH_VARARGS, "transfer(src, dst, nodes, out): copy nodes between managers."},
    {"meets", py_meets, METH_VARARGS, "meets(mgr, u, v): whether two sets (dd's ints) share a packet."},
    {"evaluate_packet", py_evaluate_packet, METH_VARARGS, "The value of a set at one TCP/UDP packet."},
    {"evaluate_packets", py_evaluate_packets, METH_VARARGS, "evaluate_packet for many packets at once."},
    {"deref", py_deref, METH_VARARGS, "deref(mgr, nodes): release one reference of each node."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cuddops",
                                    "Direct CUDD operations on dd's managers.", -1, methods};

PyMODINIT_FUNC PyInit__cuddops(void) { return PyModule_Create(&module); }
