// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: registration with the virtio bus, taking
 * devices over from the driver bound to them (the in-tree virtio_balloon,
 * which udev loads first), giving them back on unload, and saying where a
 * device is when pvballoon has none.
 *
 * Owns the takeover and give_back parameters.  Calls the driver core and
 * the balloon core's no_fe_show hook; the driver itself is in virtio.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/virtio.h>

#include "pvb_core.h"
#include "pvb_virtio_dev.h"

static bool pvb_takeover;
module_param_named(takeover, pvb_takeover, bool, 0444);
MODULE_PARM_DESC(takeover,
		 "Take virtio-balloon devices over from the driver bound to them (the in-tree virtio_balloon) on load (default 0)");

static bool pvb_give_back = true;
module_param_named(give_back, pvb_give_back, bool, 0444);
MODULE_PARM_DESC(give_back,
		 "On unload, offer devices taken over back to their driver (default 1)");

/* Devices taken from another driver, to give back on unload. */
#define PVB_MAX_TAKEN	4
static struct device *pvb_taken[PVB_MAX_TAKEN];

static int pvb_take_one(struct device *dev, void *data)
{
	struct virtio_device *vdev = dev_to_virtio(dev);
	unsigned int i;

	if (vdev->id.device != VIRTIO_ID_BALLOON || !dev->driver ||
	    dev->driver == &pvb_virtio_driver.driver)
		return 0;
	for (i = 0; i < PVB_MAX_TAKEN && pvb_taken[i]; i++)
		;
	if (i == PVB_MAX_TAKEN)
		return 0;
	pr_info("takeover: unbinding %s from %s\n", dev_name(dev), dev->driver->name);
	pvb_taken[i] = get_device(dev);
	device_release_driver(dev);
	return 0;
}

/* Where a virtio-balloon device is while pvballoon has none. */
struct pvb_elsewhere {
	struct seq_file *m;		/* the stats file, or NULL: dmesg */
	unsigned int ours, others;
};

#define PVB_FIX_TAKEOVER "modprobe -r pvballoon && modprobe pvballoon takeover=1"

/*
 * Is a balloon device ours, or held by another driver?  A balloon without
 * its device shrinks the guest and tells no host, so say so, with the way
 * out: in dmesg after loading, and in the stats file.
 */
static int pvb_whose(struct device *dev, void *data)
{
	struct virtio_device *vdev = dev_to_virtio(dev);
	struct device_driver *drv = READ_ONCE(dev->driver);
	struct pvb_elsewhere *w = data;

	if (vdev->id.device != VIRTIO_ID_BALLOON)
		return 0;
	if (drv == &pvb_virtio_driver.driver) {
		w->ours++;
		return 0;
	}
	w->others++;
	if (w->m) {
		seq_printf(w->m, "device: %s\n", dev_name(dev));
		seq_printf(w->m, "device_driver: %s\n", drv ? drv->name : "none");
		seq_puts(w->m, "fix: " PVB_FIX_TAKEOVER "\n");
	} else if (drv) {
		pr_warn("%s is driven by %s, not pvballoon: the host will not see this balloon; fix: " PVB_FIX_TAKEOVER "; at every boot: /etc/modprobe.d/pvballoon.conf (README: Installing in a real guest)\n",
			dev_name(dev), drv->name);
	} else {
		pr_warn("%s has no driver: fix: " PVB_FIX_TAKEOVER "\n", dev_name(dev));
	}
	return 0;
}

/* pvb_balloon.no_fe_show: the stats file's word on a missing front-end. */
static void pvb_no_device_show(struct seq_file *m)
{
	struct pvb_elsewhere w = { .m = m };

	bus_for_each_dev(pvb_virtio_driver.driver.bus, NULL, &w, pvb_whose);
	if (!w.others)
		seq_puts(m, "device: none\n");
}

/**
 * pvb_virtio_init - register the virtio driver
 * @b: the balloon
 *
 * With takeover=1, devices already bound to another driver (the in-tree
 * virtio_balloon, loaded first by udev) are unbound and probed again, so
 * that we get them.
 *
 * Return: 0 or an error from driver registration.
 */
int pvb_virtio_init(struct pvb_balloon *b)
{
	struct pvb_elsewhere w = { };
	unsigned int i;
	int err;

	err = register_virtio_driver(&pvb_virtio_driver);
	if (err)
		return err;
	if (pvb_takeover)
		bus_for_each_dev(pvb_virtio_driver.driver.bus, NULL, NULL,
				 pvb_take_one);
	for (i = 0; i < PVB_MAX_TAKEN && pvb_taken[i]; i++) {
		/* Not device_attach(): it would find the old driver first. */
		err = device_driver_attach(&pvb_virtio_driver.driver, pvb_taken[i]);
		if (pvb_taken[i]->driver != &pvb_virtio_driver.driver)
			pr_warn("takeover: %s did not bind to pvballoon (error %d)\n",
				dev_name(pvb_taken[i]), err);
	}
	bus_for_each_dev(pvb_virtio_driver.driver.bus, NULL, &w, pvb_whose);
	if (!w.ours && !w.others)
		pr_info("no virtio-balloon device: the balloon works from debugfs and sysfs, but no host is told (stats: frontend: none)\n");
	down_write(&b->fe_sem);
	b->no_fe_show = pvb_no_device_show;
	up_write(&b->fe_sem);
	return 0;
}

void pvb_virtio_exit(void)
{
	struct pvb_balloon *b = &pvb_the_balloon;
	unsigned int i;

	down_write(&b->fe_sem);
	b->no_fe_show = NULL;
	up_write(&b->fe_sem);
	unregister_virtio_driver(&pvb_virtio_driver);
	for (i = 0; i < PVB_MAX_TAKEN && pvb_taken[i]; i++) {
		if (pvb_give_back) {
			int err = device_attach(pvb_taken[i]);

			pr_info("give back: %s %s\n", dev_name(pvb_taken[i]),
				err > 0 ? "bound again" : "left unbound (its driver is gone)");
		}
		put_device(pvb_taken[i]);
		pvb_taken[i] = NULL;
	}
}
