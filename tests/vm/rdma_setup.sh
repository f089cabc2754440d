#!/bin/bash
# In the Soft-RoCE guest: every RDMA setup step failed in turn on both sides
# with nothing leaked (fds, threads, verbs objects), credits and receives
# whole after thousands of requests (also with random interrupts, Tflush
# and timeouts), and a peer disconnect failing waiters.
#   tests/vm/run tests/vm/rdma_setup.sh
set -euo pipefail
source "${VM_LIB:?not in the test guest: use tests/vm/run}"
trap vm_teardown EXIT
vm_rxe_up
P9_RDMA_IP=$VM_RDMA_IP "$VM_REPO/build/bin/rdma_setup_test"
