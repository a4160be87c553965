#include "common/features/feature_definition.h"
