/* process_serve.h -- _engine.serve(), a worker process's loop
 * (process_serve.c). */
#ifndef SFPY_PROCESS_SERVE_H
#define SFPY_PROCESS_SERVE_H

#include "state.h"

PyObject *sfpy_serve(PyObject *module, PyObject *args);
/* die_with_parent(task_fd): sf_proc_die_with_parent for a worker process. */
PyObject *sfpy_die_with_parent(PyObject *module, PyObject *task_fd);
/* lead_process_group(): sf_proc_lead_process_group for a worker process. */
PyObject *sfpy_lead_process_group(PyObject *module, PyObject *unused);

#endif
