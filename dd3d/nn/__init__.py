"""Neural modules of DD3D: the SIREN layer, the point-wise generator and the point cloud rotator."""
