"""Image-folder datasets: scanning, decoding by content, the on-disk cache of decoded images.

``open_folder(root, size, class_names)`` is the way in for a whole dataset: it decodes each image once (in
parallel, into the cache) and gives a :class:`FolderImages` whose pixels are read a batch at a time.
``load_folder`` puts a small set in memory (an :class:`ImageSet`); ``decode_files`` decodes a few chosen files
without the cache.
"""

from edgecnn.data.cache import FolderImages, decode_files, load_folder, open_folder
from edgecnn.data.folder import FolderScan, scan_folder
from edgecnn.data.imageset import ImageSet

__all__ = ["FolderImages", "FolderScan", "ImageSet", "decode_files", "load_folder", "open_folder", "scan_folder"]
