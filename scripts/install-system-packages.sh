#!/usr/bin/env bash
# Installs the Debian packages Lightbox runs (Orthanc with DICOMweb, Chromium for the
# browser tests) when they are missing. Only as root on Debian/Ubuntu; elsewhere it says
# what is missing and goes on (the demo then falls back to a folder of sample files).
set -u
need=()
{ command -v Orthanc || [ -x /usr/sbin/Orthanc ]; } >/dev/null 2>&1 || need+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
[ -e /usr/share/orthanc/plugins/libOrthancGdcm.so ] || need+=(orthanc-gdcm)
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# slapd: the LDAP sign-in tests run their own directory on loopback (tests/hub).
[ -x /usr/sbin/slapd ] || need+=(slapd)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "lightbox: installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Only the slapd program is wanted: no directory of the system's own is set up.
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "lightbox: apt-get install ${need[*]} failed; install them by hand" >&2; exit 1; }
else
  echo "lightbox: missing system packages: ${need[*]} (run 'sudo apt-get install ${need[*]}' for the full demo)" >&2
fi
