/*
 * worker/main.c: bin/chat-worker. See worker/service.h.
 */
#include "worker/service.h"

int main(int argc, char **argv)
{
    return wrk_service_main(argc, argv);
}
