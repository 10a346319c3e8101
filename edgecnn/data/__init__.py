"""Image-folder datasets: scanning, decoding by content, loading into arrays."""

from edgecnn.data.folder import FolderScan, LoadedImages, load_folder, scan_folder

__all__ = ["FolderScan", "LoadedImages", "load_folder", "scan_folder"]
