/*
 * upstream.c - what every upstream backend shares beyond upstream.h's
 * inline calls: failing a request after the current batch.
 */
#include <config.h>

#include <stddef.h>

#include "upstream.h"

static void run_failed(struct loop_task *t)
{
	struct upstream_req *req =
		(struct upstream_req *)((char *)t -
					offsetof(struct upstream_req, task));
	req->done(req, req->cancelled ? UPSTREAM_CANCELLED : UPSTREAM_FAILED,
		  NULL, 0);
}

void upstream_fail_later(struct loop *loop, struct upstream_req *req)
{
	req->task.cb = run_failed;
	loop_post(loop, &req->task);
}
