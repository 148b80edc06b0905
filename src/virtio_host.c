// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: which host is behind the device, and the
 * buffer shapes that host takes.
 *
 * Owns the "host" module parameter and the host profiles.  Calls nothing
 * of pvballoon's; virtio.c asks it once per probe.
 *
 * The virtio spec lets an inflate or deflate buffer hold any number of
 * PFNs, in any number of descriptors.  The hosts do not all read it so:
 *
 *  - QEMU (hw/virtio/virtio-balloon.c, virtio_balloon_handle_output())
 *    reads every PFN of every descriptor of an element.  On hugetlbfs or
 *    other large-page backing it frees a host page only when all of its
 *    4 KiB PFNs arrive in one element: its PartiallyBalloonedPage state is
 *    reset per element.  Buffers of whole 2 MiB blocks (4096 PFNs here)
 *    free hugetlbfs memory; the in-tree driver's 256 never do.
 *  - Firecracker (src/vmm/src/devices/virtio/balloon/device.rs,
 *    process_inflate()) parses only the head descriptor of a chain and
 *    skips one of more than MAX_PAGES_IN_DESC = 256 PFNs ("bogus page
 *    count") - current versions do not even return it to the used ring,
 *    older ones acknowledge it having freed nothing.  It sorts and merges
 *    the PFNs of a descriptor into ranges, one discard per range.
 *  - cloud-hypervisor (virtio-devices/src/balloon.rs, pull request 8177)
 *    caps a descriptor at the Linux driver's 256 PFNs.
 *  - crosvm (devices/src/virtio/balloon.rs) merges adjacent PFNs into
 *    ranges.
 *
 * So on any host we cannot positively identify as QEMU, every inflate and
 * deflate buffer is one descriptor of at most 256 PFNs (VIRTIO_BALLOON_ARRAY_
 * PFNS_MAX, the in-tree driver's size), and throughput comes from more
 * buffers in flight instead of bigger ones.  The core hands over the pages
 * of a 2 MiB block together and in order, so a range-merging host still
 * makes one discard per 256 contiguous PFNs.
 *
 * Identification uses only what the device presents:
 *  - virtio-mmio: the VendorID register, which QEMU sets to "QEMU"
 *    (0x554d4551, VIRT_VENDOR in hw/virtio/virtio-mmio.c);
 *  - virtio-pci: QEMU's default PCI subsystem IDs, 1af4:1100
 *    (PCI_SUBVENDOR_ID_REDHAT_QUMRANET, PCI_SUBDEVICE_ID_QEMU).  A modern
 *    device carries them itself.  A transitional device must carry the
 *    virtio device ID (5) as its subsystem device for legacy drivers, so
 *    there we look at the host bridge of its root bus, which QEMU gives
 *    the same default IDs.
 * Anything else is a generic host.  host=qemu|generic overrides.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/string.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>

#include "pvb_virtio.h"

#define PVB_QEMU_MMIO_VENDOR	0x554d4551	/* "QEMU", little endian */
#define PVB_QEMU_PCI_SUBVENDOR	0x1af4
#define PVB_QEMU_PCI_SUBDEVICE	0x1100

/* What the in-tree driver sends per buffer, and what every host takes. */
#define PVB_PORTABLE_PFNS	256

enum { PVB_HOST_AUTO, PVB_HOST_QEMU, PVB_HOST_GENERIC };
static const char *const pvb_host_names[] = {
	[PVB_HOST_AUTO] = "auto",
	[PVB_HOST_QEMU] = "qemu",
	[PVB_HOST_GENERIC] = "generic",
};
static int pvb_host_choice = PVB_HOST_AUTO;

static int pvb_host_set(const char *val, const struct kernel_param *kp)
{
	int i = sysfs_match_string(pvb_host_names, val);

	if (i < 0) {
		pr_err("invalid host=%s: expected auto, qemu or generic\n", val);
		return -EINVAL;
	}
	*(int *)kp->arg = i;
	return 0;
}

static int pvb_host_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", pvb_host_names[*(int *)kp->arg]);
}

static const struct kernel_param_ops pvb_host_ops = {
	.set = pvb_host_set,
	.get = pvb_host_get,
};
module_param_cb(host, &pvb_host_ops, &pvb_host_choice, 0444);
MODULE_PARM_DESC(host,
		 "Host profile: auto (default: QEMU when the device says so, else generic), qemu (buffers of up to 4096 PFNs, whole 2 MiB blocks in one buffer), generic (one descriptor of at most 256 PFNs per buffer, as every host accepts)");

static bool pvb_pci_is_qemu(struct pci_dev *pdev, char *why, size_t len)
{
	struct pci_bus *root = pdev->bus;
	struct pci_dev *bridge;
	bool qemu;

	if (pdev->subsystem_vendor == PVB_QEMU_PCI_SUBVENDOR &&
	    pdev->subsystem_device == PVB_QEMU_PCI_SUBDEVICE) {
		snprintf(why, len, "virtio-pci subsystem %04x:%04x",
			 pdev->subsystem_vendor, pdev->subsystem_device);
		return true;
	}
	while (!pci_is_root_bus(root))
		root = root->parent;
	bridge = pci_get_slot(root, PCI_DEVFN(0, 0));
	qemu = bridge && bridge->subsystem_vendor == PVB_QEMU_PCI_SUBVENDOR &&
	       bridge->subsystem_device == PVB_QEMU_PCI_SUBDEVICE;
	snprintf(why, len, "virtio-pci subsystem %04x:%04x, host bridge %04x:%04x subsystem %04x:%04x",
		 pdev->subsystem_vendor, pdev->subsystem_device,
		 bridge ? bridge->vendor : 0, bridge ? bridge->device : 0,
		 bridge ? bridge->subsystem_vendor : 0,
		 bridge ? bridge->subsystem_device : 0);
	pci_dev_put(bridge);
	return qemu;
}

/**
 * pvb_host_identify - choose the host profile for a device
 * @vdev: the virtio-balloon device
 * @p: filled with the profile
 *
 * Looks at the transport's identification (see the top of this file)
 * unless the host parameter forces a profile.  Never fails: what cannot be
 * identified gets the generic profile, which every host accepts.
 */
void pvb_host_identify(struct virtio_device *vdev, struct pvb_host_profile *p)
{
	struct device *parent = vdev->dev.parent;
	bool qemu = false;

	p->why[0] = '\0';
	if (parent && dev_is_pci(parent)) {
		qemu = pvb_pci_is_qemu(to_pci_dev(parent), p->why, sizeof(p->why));
	} else {
		/* virtio-mmio: id.vendor is the VendorID register. */
		qemu = vdev->id.vendor == PVB_QEMU_MMIO_VENDOR;
		snprintf(p->why, sizeof(p->why), "virtio vendor id %#x",
			 vdev->id.vendor);
	}
	switch (pvb_host_choice) {
	case PVB_HOST_QEMU:
		qemu = true;
		strscpy(p->why, "host=qemu", sizeof(p->why));
		break;
	case PVB_HOST_GENERIC:
		qemu = false;
		strscpy(p->why, "host=generic", sizeof(p->why));
		break;
	}
	p->name = qemu ? "qemu" : "generic";
	p->max_pfns = qemu ? PVB_BATCH_PFNS_QEMU : PVB_PORTABLE_PFNS;
	/*
	 * Older Firecracker versions drop a stats buffer with a tag they do
	 * not know: elsewhere than QEMU, send what the in-tree driver of
	 * v6.1 sends (tags 0-9).
	 */
	p->nr_stats = qemu ? PVB_VIRTIO_NR_STATS : VIRTIO_BALLOON_S_HTLB_PGFAIL + 1;
}
