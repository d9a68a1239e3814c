# os-update A/B boot selection for U-Boot (Raspberry Pi 4/5, qemu_arm64).
# Implements SimulateBoot() of lib/boot/selection.hpp step for step; see README.md.
# Build: mkimage -A arm64 -T script -C none -d boot.cmd boot.scr
#
# Hush notes: shell-local variables (name=value) never reach saveenv, but U-Boot refuses a local
# that is empty or that shares its name with an env variable, hence the "none"/"no" sentinels.
# The script may run twice in one session (after a failed boot), so every local is set here.
osu_slot=none
osu_trial=no
osu_step=none
osu_ok=yes

# Boot partition: osu_devtype/osu_devnum/osu_bootpart from the env, else what distro boot or
# bootstd passed to this script, else mmc 0:1.
if test -n "${osu_devtype}"; then osu_dt=${osu_devtype}; elif test -n "${devtype}"; then osu_dt=${devtype}; else osu_dt=mmc; fi
if test -n "${osu_devnum}"; then osu_dn=${osu_devnum}; elif test -n "${devnum}"; then osu_dn=${devnum}; else osu_dn=0; fi
if test -n "${osu_bootpart}"; then osu_bp=${osu_bootpart}; elif test -n "${distro_bootpart}"; then osu_bp=${distro_bootpart}; else osu_bp=1; fi

# Step 0: no OSU_ORDER means U-Boot came up on its built-in default env: a power cut tore the
# env file (the Pi's uboot.env on FAT, one copy). os-update keeps the order and the attempts,
# never OSU_TRY, in two CRC-checked copies: import the first valid one, so that the committed
# slot boots (a pending one-shot try is lost with the env). No valid copy: "A B" as below.
if test -z "${OSU_ORDER}"; then
  for osu_f in /osu/selection.env /osu/selection.env.bak; do
    if test -z "${OSU_ORDER}"; then
      if load ${osu_dt} ${osu_dn}:${osu_bp} ${ramdisk_addr_r} ${osu_f}; then
        if env import -c ${ramdisk_addr_r} ${filesize} OSU_ORDER OSU_A_LEFT OSU_B_LEFT; then
          echo "os-update: env lost; order and attempts from ${osu_f}"
        fi
      fi
    fi
  done
fi

# OSU_ORDER: its words A and B in order; none of them (or no OSU_ORDER) means "A B".
osu_first=none
if test -n "${OSU_ORDER}"; then
  for osu_w in ${OSU_ORDER}; do
    if test "${osu_w}" = A || test "${osu_w}" = B; then
      if test "${osu_first}" = none; then osu_first=${osu_w}; fi
    fi
  done
fi
if test "${osu_first}" = none; then osu_order="A B"; osu_first=A; else osu_order="${OSU_ORDER}"; fi

# Step 1: OSU_TRY names a slot: clear it, save, boot that slot once as a trial. A trial whose
# clearing could not be saved is not booted: it would be tried again on every reset, forever.
if test "${OSU_TRY}" = A || test "${OSU_TRY}" = B; then
  osu_try=${OSU_TRY}
  env set OSU_TRY
  if saveenv; then
    osu_slot=${osu_try}
    osu_trial=yes
    osu_step=try
  else
    echo "os-update: cannot save the env; not booting trial slot ${osu_try}"
  fi
fi

# Step 2: the first slot in the order with 1..3 attempts left: decrement, save, boot it.
# Missing or malformed attempts count as 0.
if test "${osu_slot}" = none; then
  for osu_s in ${osu_order}; do
    if test "${osu_slot}" = none; then
      if test "${osu_s}" = A; then
        if test "${OSU_A_LEFT}" = 3; then osu_slot=A; env set OSU_A_LEFT 2
        elif test "${OSU_A_LEFT}" = 2; then osu_slot=A; env set OSU_A_LEFT 1
        elif test "${OSU_A_LEFT}" = 1; then osu_slot=A; env set OSU_A_LEFT 0; fi
      elif test "${osu_s}" = B; then
        if test "${OSU_B_LEFT}" = 3; then osu_slot=B; env set OSU_B_LEFT 2
        elif test "${OSU_B_LEFT}" = 2; then osu_slot=B; env set OSU_B_LEFT 1
        elif test "${OSU_B_LEFT}" = 1; then osu_slot=B; env set OSU_B_LEFT 0; fi
      fi
    fi
  done
  if test "${osu_slot}" != none; then
    osu_step=count
    if saveenv; then echo "os-update: slot ${osu_slot}, attempt counted"; else echo "os-update: cannot save the env; booting slot ${osu_slot} anyway"; fi
  fi
fi

# Step 3: every slot out of attempts: boot the committed (first) slot, env unchanged.
if test "${osu_slot}" = none; then
  osu_slot=${osu_first}
  osu_step=fallback
  echo "os-update: no slot has attempts left; booting committed slot ${osu_slot}"
fi

echo "os-update: booting slot ${osu_slot} (trial: ${osu_trial}) from ${osu_dt} ${osu_dn}:${osu_bp}"
osu_dir=/osu/${osu_slot}

# The slot's root and command line, written by os-update next to its kernel. Nothing from here
# on is saved to the env.
if load ${osu_dt} ${osu_dn}:${osu_bp} ${ramdisk_addr_r} ${osu_dir}/boot.env; then
  env import -t ${ramdisk_addr_r} ${filesize} osu_root osu_cmdline
else
  osu_ok=no
fi
if test -z "${osu_root}"; then
  echo "os-update: ${osu_dir}/boot.env has no osu_root"
  osu_ok=no
fi
if test "${osu_ok}" = yes; then
  if test -n "${osu_cmdline}"; then
    env set bootargs "root=${osu_root} osu.slot=${osu_slot} ${osu_cmdline}"
  else
    env set bootargs "root=${osu_root} osu.slot=${osu_slot}"
  fi
  if test "${osu_trial}" = yes; then env set bootargs "${bootargs} osu.trial=1"; fi
fi

# Kernel: an uncompressed arm64 Image, else vmlinuz (an Image, or a gzip'd Image that booti
# unpacks through kernel_comp_addr_r: 128 MiB past ramdisk_addr_r unless the board sets it).
if test "${osu_ok}" = yes; then
  if test -e ${osu_dt} ${osu_dn}:${osu_bp} ${osu_dir}/Image; then osu_kernel=Image; else osu_kernel=vmlinuz; fi
  if load ${osu_dt} ${osu_dn}:${osu_bp} ${kernel_addr_r} ${osu_dir}/${osu_kernel}; then
    env set kernel_comp_size ${filesize}
    if test -z "${kernel_comp_addr_r}"; then setexpr kernel_comp_addr_r ${ramdisk_addr_r} + 0x8000000; fi
  else
    osu_ok=no
  fi
fi

# Initrd, if the slot has one: initrd.img, else initrd.
osu_rd=-
if test "${osu_ok}" = yes; then
  if test -e ${osu_dt} ${osu_dn}:${osu_bp} ${osu_dir}/initrd.img; then osu_initrd=initrd.img; else osu_initrd=initrd; fi
  if test -e ${osu_dt} ${osu_dn}:${osu_bp} ${osu_dir}/${osu_initrd}; then
    if load ${osu_dt} ${osu_dn}:${osu_bp} ${ramdisk_addr_r} ${osu_dir}/${osu_initrd}; then osu_rd=${ramdisk_addr_r}:${filesize}; else osu_ok=no; fi
  fi
fi

# Device tree: the slot's own (the base name of ${fdtfile}) when it has one and the board has
# fdt_addr_r, else the one the firmware passed (fdt_addr on the Pi) or U-Boot's (qemu).
osu_fdt=none
if test "${osu_ok}" = yes; then
  if test -n "${fdtfile}" && test -n "${fdt_addr_r}"; then
    env set osu_fdtname ${fdtfile}
    setexpr osu_fdtname sub ".*/" ""
    if test -e ${osu_dt} ${osu_dn}:${osu_bp} ${osu_dir}/${osu_fdtname}; then
      if load ${osu_dt} ${osu_dn}:${osu_bp} ${fdt_addr_r} ${osu_dir}/${osu_fdtname}; then osu_fdt=${fdt_addr_r}; else osu_ok=no; fi
    fi
  fi
  if test "${osu_fdt}" = none; then
    if test -n "${fdt_addr}"; then osu_fdt=${fdt_addr}; else osu_fdt=${fdtcontroladdr}; fi
  fi
fi

if test "${osu_ok}" = yes; then
  echo "os-update: bootargs ${bootargs}"
  booti ${kernel_addr_r} ${osu_rd} ${osu_fdt}
fi

# Only reached when the slot did not boot. After a trial or a counted attempt, reset: the env
# already says what to boot next. Without attempts left, let U-Boot go on to other boot sources.
echo "os-update: slot ${osu_slot} failed to boot"
if test "${osu_step}" = try || test "${osu_step}" = count; then reset; fi
