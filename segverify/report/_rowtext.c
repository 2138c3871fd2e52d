/* A flow table's report rows as JSON text, in C: the one loop of segverify/report/rowtext.py.
 *
 * Why C: a day of captures has tens of thousands of flows, and a row is ~20 fields; formatting them in
 * Python cost 3-5 us a row, the largest part of a replay's work after the captures are read. Here every
 * string a row holds (addresses, segments, verdicts) is already JSON text, encoded once per distinct value by
 * Python's own encoder, and a row is literal text, numbers and those strings in a fixed order.
 *
 * Optional like the other extensions: rowtext.py has the same loop in Python, and the tests compare both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The decimal text of v into out (at least 20 bytes); its length. */
static Py_ssize_t decimal(int64_t v, char *out) {
    char tmp[24];
    int k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    Py_ssize_t len = 0;
    if (v < 0) out[len++] = '-';
    while (k) out[len++] = tmp[--k];
    return len;
}

/* render(pieces, columns, is_text, strs) -> list[bytes]
 *
 * Row i is pieces[0] + value(0, i) + pieces[1] + ... + value(k-1, i) + pieces[k], where columns holds k
 * buffers of n int64 each; value(j, i) is strs[columns[j][i]] where is_text[j] is non-zero, else the decimal
 * text of columns[j][i]. Every index is checked against strs. */
static PyObject *render(PyObject *self, PyObject *args) {
    PyObject *pieces, *columns, *strs;
    Py_buffer flags;
    if (!PyArg_ParseTuple(args, "O!O!y*O!", &PyTuple_Type, &pieces, &PyTuple_Type, &columns, &flags, &PyTuple_Type,
                          &strs))
        return NULL;
    Py_ssize_t k = PyTuple_GET_SIZE(columns), ns = PyTuple_GET_SIZE(strs), n = -1;
    PyObject *out = NULL;
    Py_buffer *cols = NULL;
    Py_ssize_t got = 0;
    char *scratch = NULL;
    if (PyTuple_GET_SIZE(pieces) != k + 1 || flags.len != k) {
        PyErr_SetString(PyExc_ValueError, "render: k columns need k + 1 pieces and k flags");
        goto done;
    }
    for (Py_ssize_t j = 0; j <= k; j++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(pieces, j))) {
            PyErr_SetString(PyExc_TypeError, "render: pieces must be bytes");
            goto done;
        }
    for (Py_ssize_t s = 0; s < ns; s++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(strs, s))) {
            PyErr_SetString(PyExc_TypeError, "render: strs must be bytes");
            goto done;
        }
    cols = PyMem_Calloc((size_t)(k ? k : 1), sizeof(Py_buffer));
    if (!cols) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < k; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(columns, got), &cols[got], PyBUF_C_CONTIGUOUS) < 0) goto done;
        if (cols[got].len % 8 || (n >= 0 && cols[got].len / 8 != n)) {
            got++;
            PyErr_SetString(PyExc_ValueError, "render: columns of int64, all of one length");
            goto done;
        }
        n = cols[got].len / 8;
    }
    if (n < 0) n = 0;
    const unsigned char *is_text = (const unsigned char *)flags.buf;
    /* the longest row: every piece, and per column a number or the longest string */
    Py_ssize_t longest_str = 0, fixed = 0;
    for (Py_ssize_t s = 0; s < ns; s++)
        if (PyBytes_GET_SIZE(PyTuple_GET_ITEM(strs, s)) > longest_str) longest_str = PyBytes_GET_SIZE(PyTuple_GET_ITEM(strs, s));
    for (Py_ssize_t j = 0; j <= k; j++) fixed += PyBytes_GET_SIZE(PyTuple_GET_ITEM(pieces, j));
    Py_ssize_t per = longest_str > 20 ? longest_str : 20;
    if (k && per > (PY_SSIZE_T_MAX - fixed) / k) {
        PyErr_NoMemory();
        goto done;
    }
    scratch = PyMem_Malloc((size_t)(fixed + k * per + 1));
    out = PyList_New(n);
    if (!scratch || !out) {
        if (!scratch) PyErr_NoMemory();
        Py_CLEAR(out);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        char *w = scratch;
        for (Py_ssize_t j = 0; j <= k; j++) {
            PyObject *p = PyTuple_GET_ITEM(pieces, j);
            memcpy(w, PyBytes_AS_STRING(p), (size_t)PyBytes_GET_SIZE(p));
            w += PyBytes_GET_SIZE(p);
            if (j == k) break;
            int64_t v = ((const int64_t *)cols[j].buf)[i];
            if (is_text[j]) {
                if (v < 0 || v >= ns) {
                    PyErr_SetString(PyExc_ValueError, "render: a text index outside strs");
                    Py_CLEAR(out);
                    goto done;
                }
                PyObject *t = PyTuple_GET_ITEM(strs, v);
                memcpy(w, PyBytes_AS_STRING(t), (size_t)PyBytes_GET_SIZE(t));
                w += PyBytes_GET_SIZE(t);
            } else {
                w += decimal(v, w);
            }
        }
        PyObject *row = PyBytes_FromStringAndSize(scratch, w - scratch);
        if (!row) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, row);
    }
done:
    for (Py_ssize_t j = 0; j < got; j++) PyBuffer_Release(&cols[j]);
    PyMem_Free(cols);
    PyMem_Free(scratch);
    PyBuffer_Release(&flags);
    return out;
}

static PyMethodDef methods[] = {
    {"render", render, METH_VARARGS, "Rows of literal text, numbers and strings from int64 columns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rowtext", "A flow table's report rows in C.", -1, methods};

PyMODINIT_FUNC PyInit__rowtext(void) { return PyModule_Create(&module); }
