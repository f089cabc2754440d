#!/bin/bash
# In the Soft-RoCE guest: the client library's diod suite (every operation,
# 64 MiB sequential with checksums, 8 threads on one session) over RDMA to
# the RDMA-enabled diod, a 9P RDMA server nobody here wrote.
#   tests/vm/run tests/vm/rdma_diod_client.sh
set -euo pipefail
source "${VM_LIB:?not in the test guest: use tests/vm/run}"
trap vm_teardown EXIT
vm_mkexport /srv/rdma
vm_start_diod_rdma /srv/rdma
diod_pid=$VM_BG_PID
P9_TRANSPORT=rdma P9_DIOD_HOST=$VM_RDMA_IP P9_DIOD_PORT=$VM_DIOD_RDMA_PORT \
  P9_DIOD_EXPORT=/srv/rdma P9_DIOD_PID=$diod_pid \
  "$VM_REPO/build/bin/diod_client_test"
