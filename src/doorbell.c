/*
 * doorbell.c - placeholder until issue 4 lands the pollable-fd mechanism:
 * nothing can arm a waitpoint yet, so there is nobody to notify.
 */
#include "doorbell.h"

void
shk__doorbell_notify(shk_seg *seg, shk__waitpoint *wp)
{
	(void)seg;
	(void)wp;
}
